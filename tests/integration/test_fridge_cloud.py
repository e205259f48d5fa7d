"""The poller against a fridge vendor's API that the test serves for real on loopback.

Given fridges and a vendor that answers slowly, fails, repeats itself and sends reports out of
order, when the poller runs rounds (its clock moved by hand), then every report is applied
once, in the order it was taken, the cursor survives a restart, one fridge's trouble costs
no other fridge its counts, and a fridge silent for too long is marked stale until it
reports again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from application.fridge_cloud import Poller
from domain.causes import cause_of
from domain.fridge import Fridge
from interfaces.fridge_cloud import Pace, VendorCounts
from ops.root import WriteSide
from tests.conftest import FakeClock, unique
from tests.loopback import address, serving

T0 = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=30)


@dataclass
class Vendor:
    """What the vendor holds and how it misbehaves, per fridge; and what it was asked."""

    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    behaviour: dict[str, list[str]] = field(default_factory=dict)  # consumed one per request
    asked: list[tuple[str, str | None]] = field(default_factory=list)
    asked_at: list[float] = field(default_factory=list)
    release_slow: threading.Event = field(default_factory=threading.Event)

    def answer(self, fridge_id: str, since: str | None) -> tuple[int, bytes]:
        self.asked.append((fridge_id, since))
        self.asked_at.append(time.monotonic())
        script = self.behaviour.get(fridge_id, [])
        how = script.pop(0) if script else "ok"
        if how == "fail":
            return 500, b"oops"
        if how == "busy":
            return 429, b""
        if how == "garbage":
            return 200, b'{"reports": [{"report_id": 7}]}'
        if how == "slow":  # past the client's read timeout, then the answer is lost
            self.release_slow.wait(timeout=2.0)
        held = self.reports.get(fridge_id)
        if held is None:
            return 404, b""
        if how == "repeat":  # ignores `since`, and says everything twice
            chosen = held + held
        else:
            cutoff = datetime.fromisoformat(since) if since else None
            chosen = [
                r for r in held if cutoff is None or datetime.fromisoformat(r["taken_at"]) > cutoff
            ]
            chosen = list(reversed(chosen))  # newest first: out of order on purpose
        return 200, json.dumps({"reports": chosen}).encode()


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, str]]:
    state = Vendor()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")  # v1 fridges <id> counts
            since = parse_qs(url.query).get("since", [None])[0]
            status, body = state.answer(parts[2], since)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as server:
        yield state, f"http://{address(server)}"
        state.release_slow.set()


def report(report_id: str, minutes: int, units: int, meal: str) -> dict[str, Any]:
    taken = T0 + timedelta(minutes=minutes)
    return {"report_id": report_id, "taken_at": taken.isoformat(), "counts": {meal: units}}


def fridges_with_soup(side: WriteSide, count: int) -> tuple[list[str], str]:
    city, venue, soup = unique("city"), unique("venue"), unique("soup")
    side.catalogue.register_city(city, "Berlin", "Europe/Berlin")
    side.catalogue.register_venue(venue, city, "Gym")
    side.catalogue.register_meal(soup, "Soup", "6.50", "EUR")
    fridges = [unique("fridge") for _ in range(count)]
    for fridge in fridges:
        side.catalogue.install_fridge(fridge, venue)
        side.stock.deliver(fridge, unique("delivery"), {soup: 10}, date(2026, 12, 12))
    return fridges, soup


def applied(side: WriteSide, fridge_id: str) -> list[str]:
    return [
        e.report_id
        for e in side.store.events.get(Fridge.create_id(fridge_id))
        if isinstance(e, Fridge.CountsReported)
    ]


def of_kind(side: WriteSide, fridge_id: str, kind: type) -> int:
    return sum(isinstance(e, kind) for e in side.store.events.get(Fridge.create_id(fridge_id)))


def client(url: str, **options: Any) -> VendorCounts:
    options.setdefault("timeout", httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0))
    options.setdefault("backoff_cap", 0.05)
    options.setdefault("rate", 1000)
    return VendorCounts(url, **options)


def poller(side: WriteSide, clock: FakeClock, source: Any) -> Poller:
    return Poller(side.store, side.stock, source, clock, STALE_AFTER)


def test_slow_failing_repeating_and_out_of_order_answers_apply_each_report_once_in_order(
    side: WriteSide, clock: FakeClock, vendor: tuple[Vendor, str]
) -> None:
    state, url = vendor
    clock.now = T0 + timedelta(hours=1)
    (slow, failing, repeating, broken), soup = fridges_with_soup(side, 4)
    for fridge in (slow, failing, repeating, broken):
        state.reports[fridge] = [
            report(f"{fridge}-a", 0, 9, soup),
            report(f"{fridge}-b", 10, 7, soup),
            report(f"{fridge}-c", 20, 4, soup),
        ]
    state.behaviour = {
        slow: ["slow"],  # one timeout, then answered on the retry
        failing: ["fail", "busy"],  # a 500 and a 429, then answered
        repeating: ["repeat", "repeat", "repeat"],
        broken: ["garbage"],  # not retried: the next round asks again
    }
    source = client(url)
    first = poller(side, clock, source).poll_round()
    assert first.unavailable == [broken]
    # the slow one was asked twice (a timeout, then the answer), the failing one three times
    assert state.asked.count((slow, None)) == 2 and state.asked.count((failing, None)) == 3
    assert state.asked.count((broken, None)) == 1
    for fridge in (slow, failing, repeating):
        assert applied(side, fridge) == [f"{fridge}-a", f"{fridge}-b", f"{fridge}-c"]
        side.writer.forget(fridge)
        assert side.catalogue.fridge(fridge).on_hand(soup) == 4  # the newest count stands
    assert applied(side, broken) == []

    again = poller(side, clock, source)  # started again: the cursor comes from the fridges
    second = again.poll_round()
    assert second.applied == [(broken, f"{broken}-{x}") for x in "abc"]
    newest = (T0 + timedelta(minutes=20)).isoformat()
    assert (slow, newest) in state.asked[-4:] and (failing, newest) in state.asked[-4:]
    for fridge in (slow, failing, repeating, broken):
        assert len(applied(side, fridge)) == 3
    assert again.poll_round().applied == []
    source.close()


def test_a_fridge_silent_too_long_is_marked_stale_once_until_it_reports_again(
    side: WriteSide, clock: FakeClock, vendor: tuple[Vendor, str]
) -> None:
    state, url = vendor
    clock.now = T0 + timedelta(minutes=1)
    (quiet, chatty), soup = fridges_with_soup(side, 2)
    state.reports = {quiet: [report("q1", 0, 9, soup)], chatty: [report("c1", 0, 9, soup)]}
    source = client(url)
    poll = poller(side, clock, source)
    poll.poll_round()

    clock.now = T0 + STALE_AFTER  # exactly the interval: not yet
    assert poll.poll_round().marked_stale == []
    state.reports[chatty].append(report("c2", 30, 8, soup))
    clock.now = T0 + STALE_AFTER + timedelta(seconds=1)
    assert poll.poll_round().marked_stale == [quiet]
    assert poll.poll_round().marked_stale == []
    assert of_kind(side, quiet, Fridge.MarkedStale) == 1
    assert of_kind(side, chatty, Fridge.MarkedStale) == 0
    # what the poller recorded names it and why, for `farmacy trace` and the logs
    events = list(side.store.events.get(Fridge.create_id(quiet)))
    counted = next(e for e in events if isinstance(e, Fridge.CountsReported))
    marked = next(e for e in events if isinstance(e, Fridge.MarkedStale))
    counted_cause, marked_cause = cause_of(counted), cause_of(marked)
    assert counted_cause is not None and marked_cause is not None
    assert (counted_cause.process, counted_cause.correlation_id, counted_cause.causation_id) == (
        "fridge-poller",
        f"count:{quiet}:q1",
        "vendor report q1",
    )
    assert (marked_cause.process, marked_cause.causation_id) == (
        "fridge-poller",
        "no count for too long",
    )

    state.reports[quiet].append(report("q2", 45, 5, soup))
    clock.now = T0 + timedelta(minutes=46)
    poll.poll_round()
    assert of_kind(side, quiet, Fridge.ReportingAgain) == 1
    side.writer.forget(quiet)
    assert side.catalogue.fridge(quiet).stale_since is None
    source.close()


def test_a_count_posted_elsewhere_keeps_a_fridge_from_being_marked(
    side: WriteSide, clock: FakeClock
) -> None:
    """Counts that came over HTTP (another process) are the fridge's to weigh, not the
    poller's: its view is older, the fridge refuses the mark."""
    clock.now = T0
    (fridge,), soup = fridges_with_soup(side, 1)
    side.stock.report_counts(fridge, "r1", T0, {soup: 9})
    poll = poller(side, clock, None)
    poll.poll_round()
    clock.now = T0 + STALE_AFTER + timedelta(minutes=1)
    side.stock.report_counts(fridge, "r2", clock.now, {soup: 8})
    assert poll.poll_round().marked_stale == []
    assert of_kind(side, fridge, Fridge.MarkedStale) == 0


def test_requests_are_paced_to_the_rate_limit(
    side: WriteSide, clock: FakeClock, vendor: tuple[Vendor, str]
) -> None:
    state, url = vendor
    clock.now = T0
    fridges, soup = fridges_with_soup(side, 6)
    for fridge in fridges:
        state.reports[fridge] = [report(f"{fridge}-a", 0, 9, soup)]
    source = client(url, rate=20)
    poller(side, clock, source).poll_round()
    span = state.asked_at[-1] - state.asked_at[0]
    # six requests paced 1/20 s apart span at least 5 intervals when sent; arrival allows for
    # the first one's connection set-up (unpaced, six loopback requests take milliseconds)
    assert len(state.asked) == 6 and span >= 4 * (1 / 20)
    source.close()


def test_pace_waits_for_the_next_free_slot() -> None:
    slept: list[float] = []
    pace = Pace(rate=4, sleep=slept.append)
    for _ in range(3):
        pace.wait()
    assert slept[0] == pytest.approx(0.25, abs=0.02)
    assert slept[1] == pytest.approx(0.5, abs=0.02)
