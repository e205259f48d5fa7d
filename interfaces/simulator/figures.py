"""What a run measured: requests by kind and status, latency per route, errors, orders by
outcome, read-model lag seen; the progress line and the JSON report are made from these."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

EXPECTED: dict[str, frozenset[int]] = {
    # kind -> statuses that are a normal answer to it (anything else is an error)
    "place_order": frozenset({200, 201, 409}),  # 409: sold out, with what is available
    "repeat_order": frozenset({200}),
    "cancel": frozenset({200, 409}),  # 409: already picked up or ended
    "pickup": frozenset({201, 409}),  # 409: released meanwhile (a walk-up took the meals)
    "reprice": frozenset({200}),
    "count": frozenset({200, 201}),  # 200: a repeat, or older than the last applied
    "delivery": frozenset({200, 201}),
}
"""A kind not listed expects 200 or 201 (reads, setup)."""

BUSY = 503
"""The API's answer when its command queue or a read model is behind: retried, and counted."""


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(share * len(sorted_values) + 0.999999) - 1))
    return sorted_values[rank]


def expected(kind: str, status: int) -> bool:
    return status in EXPECTED.get(kind, frozenset({200, 201, 304}))


@dataclass
class Figures:
    started: float = field(default_factory=time.monotonic)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    lag_events: list[int] = field(default_factory=list)
    lag_seconds: list[float] = field(default_factory=list)
    dropped_sessions: int = 0
    highest_position: int = 0
    catch_up_seconds: float | None = None
    in_day: tuple[int, float] | None = None
    """Requests answered by the end of the simulated day, and the day's real seconds."""
    unknown_statuses: Counter[str] = field(default_factory=Counter)
    final_statuses: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def record(self, kind: str, status: int | str, seconds: float, detail: Any = "") -> None:
        """One answer; `detail` (its body) is written out only for an error: a menu's body
        turned into text on every read would cost the simulator more than the read."""
        self.requests[kind] += 1
        self.statuses[kind][str(status)] += 1
        self.latencies[kind].append(seconds * 1000.0)
        if isinstance(status, str) or not expected(kind, status):
            self.errors[f"{kind} {status}"] += 1
            if len(self.first_errors) < 10:
                self.first_errors.append(f"{kind} {status} {str(detail)[:200]}"[:300])

    def merge(self, other: Figures) -> None:
        """Take in another simulator process's figures (one run split over processes): its
        counts added, its latencies pooled; its day is as long as the longest of them."""
        self.requests.update(other.requests)
        for kind, counted in other.statuses.items():
            self.statuses[kind].update(counted)
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.errors.update(other.errors)
        self.outcomes.update(other.outcomes)
        self.lag_events.extend(other.lag_events)
        self.lag_seconds.extend(other.lag_seconds)
        self.dropped_sessions += other.dropped_sessions
        self.highest_position = max(self.highest_position, other.highest_position)
        waits = [w for w in (self.catch_up_seconds, other.catch_up_seconds) if w is not None]
        self.catch_up_seconds = max(waits) if waits else None
        if other.in_day is not None:
            requests, seconds = self.in_day or (0, 0.0)
            self.in_day = (requests + other.in_day[0], max(seconds, other.in_day[1]))
        self.unknown_statuses.update(other.unknown_statuses)
        self.final_statuses.update(other.final_statuses)
        self.notes.extend(other.notes)
        self.first_errors = (self.first_errors + other.first_errors)[:10]

    def saw_position(self, position: int | None) -> None:
        if position is not None and position > self.highest_position:
            self.highest_position = position

    def saw_read(self, position: int | None, age_seconds: float | None) -> None:
        """A read's freshness against the newest position this run has been answered."""
        if position is not None:
            self.lag_events.append(max(0, self.highest_position - position))
        if age_seconds is not None:
            self.lag_seconds.append(age_seconds)

    def total(self) -> int:
        return sum(self.requests.values())

    def all_latencies(self) -> list[float]:
        return sorted(v for values in self.latencies.values() for v in values)

    def progress(self, clock: str) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        every = self.all_latencies()
        return {
            "event": "progress",
            "elapsed_s": round(elapsed, 1),
            "simulated": clock,
            "requests": self.total(),
            "rate": round(self.total() / elapsed, 1) if elapsed else 0.0,
            "orders": self.outcomes["placed"],
            "errors": sum(self.errors.values()),
            "p50_ms": rounded(percentile(every, 0.5)),
            "p99_ms": rounded(percentile(every, 0.99)),
        }

    def report(self, seconds: float) -> dict[str, Any]:
        routes = {}
        for kind, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            routes[kind] = {
                "requests": self.requests[kind],
                "rate": round(self.requests[kind] / seconds, 2) if seconds else None,
                "p50_ms": rounded(percentile(ordered, 0.5)),
                "p99_ms": rounded(percentile(ordered, 0.99)),
                "statuses": dict(self.statuses[kind]),
            }
        every = self.all_latencies()
        events = sorted(self.lag_events)
        ages = sorted(self.lag_seconds)
        return {
            "seconds": round(seconds, 2),
            "requests": self.total(),
            "rate": round(self.total() / seconds, 2) if seconds else None,
            "p50_ms": rounded(percentile(every, 0.5)),
            "p99_ms": rounded(percentile(every, 0.99)),
            "requests_in_day": self.in_day[0] if self.in_day else None,
            "rate_in_day": round(self.in_day[0] / self.in_day[1], 2) if self.in_day else None,
            "requests_by_kind": dict(sorted(self.requests.items())),
            "routes": routes,
            "errors": dict(sorted(self.errors.items())),
            "first_errors": self.first_errors,
            "orders": dict(sorted(self.outcomes.items())),
            "orders_by_final_status": dict(sorted(self.final_statuses.items())),
            "unknown_statuses": dict(self.unknown_statuses),
            "dropped_sessions": self.dropped_sessions,
            "read_model_lag": {
                "events_p50": percentile([float(e) for e in events], 0.5),
                "events_p99": percentile([float(e) for e in events], 0.99),
                "events_max": events[-1] if events else None,
                "age_seconds_p50": rounded(percentile(ages, 0.5)),
                "age_seconds_p99": rounded(percentile(ages, 0.99)),
                "catch_up_seconds": rounded(self.catch_up_seconds),
            },
            "notes": self.notes,
        }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
