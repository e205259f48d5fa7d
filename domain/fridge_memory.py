"""What a fridge remembers of the deliveries and count reports it applied, under their ids:
enough to tell a repeat (a no-op) from an id reused for something else (refused)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime


def delivery_fingerprint(lines: Mapping[str, int], best_before: date) -> str:
    """What a delivery brought, as the fridge remembers it under its delivery id."""
    units = ",".join(f"{meal_id}={n}" for meal_id, n in sorted(lines.items()))
    return f"{best_before.isoformat()} {units}"


def same_delivery(remembered: str, lines: Mapping[str, int], best_before: date) -> bool:
    """Whether a delivery repeats the one remembered. Fridges recorded before deliveries were
    fingerprinted (their snapshots) remember only the best-before: that is all we compare."""
    if " " not in remembered:
        return remembered == best_before.isoformat()
    return remembered == delivery_fingerprint(lines, best_before)


def report_fingerprint(taken_at: datetime, counts: Mapping[str, int]) -> str:
    """What a count report said: when it was taken (UTC) and what it counted."""
    units = ",".join(f"{meal_id}={n}" for meal_id, n in sorted(counts.items()))
    return f"{taken_at.astimezone(UTC).isoformat()} {units}"


def reported_at(fingerprint: str) -> datetime:
    return datetime.fromisoformat(fingerprint.split(" ", 1)[0])
