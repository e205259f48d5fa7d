"""The fridge cloud: counts read from the fridge vendor's API, and fridges gone silent.

`Poller.poll_round` asks the vendor (a port, `CountSource`; the HTTP adapter is
interfaces/fridge_cloud.py) for each fridge's reports taken after its cursor, applies them
oldest first through the fridge's writer (`Stock.report_counts`: a report id already applied
changes nothing, and one older than the newest applied is ignored, so a repeated or late
answer does no harm), and moves the cursor to the newest applied. The cursor starts from the
fridge itself (`last_report_at`, the newest count it took in, from whichever source), so a
restarted poller asks for nothing it has applied. A vendor that is slow or failing for one
fridge costs that fridge this round, never the others.

Then every fridge the poller knows whose newest count is older than `stale_after` is asked to
`mark_stale`; the fridge decides from its own newest report (counts may also arrive over
HTTP, in another process), and its next count clears the mark.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import structlog

from application.causes import caused_by
from application.clock import Clock
from application.errors import NotFound
from application.following import Following
from application.stock import Stock
from application.store import EventStore
from domain.causes import Cause
from domain.errors import DomainError
from domain.fridge import Fridge

log = structlog.get_logger(__name__)
PROCESS = "fridge-poller"
"""The process named in the cause of what the poller records (`farmacy trace`, the logs)."""


@dataclass(frozen=True)
class VendorReport:
    report_id: str
    taken_at: datetime
    counts: Mapping[str, int]


class VendorUnavailable(Exception):
    """The vendor did not answer usably for a fridge (after the adapter's own retries)."""


class CountSource(Protocol):
    def reports(self, fridge_id: str, since: datetime | None) -> list[VendorReport]:
        """The fridge's reports taken after `since` (all it has, if None), in any order,
        repeats possible. VendorUnavailable when it cannot say."""
        ...


@dataclass
class PollRound:
    applied: list[tuple[str, str]] = field(default_factory=list)  # (fridge, report)
    refused: list[tuple[str, str]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # fridges the vendor failed for
    marked_stale: list[str] = field(default_factory=list)


@dataclass
class _Known:
    fridge_id: str
    last_report_at: datetime | None = None
    stale: bool = False
    loaded: bool = False


class Poller:
    def __init__(
        self,
        store: EventStore,
        stock: Stock,
        source: CountSource | None,
        clock: Clock,
        stale_after: timedelta,
    ) -> None:
        self.stock = stock
        self.source = source
        self.clock = clock
        self.stale_after = stale_after
        self._fridges: dict[UUID, _Known] = {}
        self._following = Following(store, [Fridge.Installed, Fridge.Retired], self._take)

    def stale_fridges(self) -> list[str]:
        """The fridges this poller knows to be marked stale now, by id."""
        return sorted(k.fridge_id for k in list(self._fridges.values()) if k.stale)

    def poll_round(self, stop: threading.Event | None = None) -> PollRound:
        """One pass over every fridge: its new reports, then whether it has gone silent.
        With `stop` set it ends after the fridge at hand."""
        self._following.refresh()
        done = PollRound()
        for known in list(self._fridges.values()):
            if stop is not None and stop.is_set():
                return done
            if not known.loaded:
                self._look(known)
            if self.source is not None:
                self._poll(known, done)
        now = self.clock()
        for known in list(self._fridges.values()):
            if stop is not None and stop.is_set():
                return done
            silent = known.last_report_at is not None and now - known.last_report_at > (
                self.stale_after
            )
            if silent and not known.stale:
                self._mark_stale(known, now, done)
        return done

    def _poll(self, known: _Known, done: PollRound) -> None:
        assert self.source is not None
        try:
            reports = self.source.reports(known.fridge_id, known.last_report_at)
        except VendorUnavailable as error:
            log.warning("fridge_cloud_unavailable", fridge_id=known.fridge_id, error=str(error))
            done.unavailable.append(known.fridge_id)
            return
        fresh = sorted(
            (
                r
                for r in reports
                if known.last_report_at is None or r.taken_at > known.last_report_at
            ),
            key=lambda r: r.taken_at,
        )
        for report in fresh:
            # One conversation per vendor report: what it sets off (fulfilment cancelling
            # the orders of meals found missing) carries it on.
            counted = Cause(
                correlation_id=f"count:{known.fridge_id}:{report.report_id}",
                causation_id=f"vendor report {report.report_id}",
                process=PROCESS,
            )
            try:
                with caused_by(counted):
                    self.stock.report_counts(
                        known.fridge_id, report.report_id, report.taken_at, report.counts
                    )
            except (DomainError, NotFound) as refused:
                # a report the fridge will never take (an unknown meal, an id reused for
                # other counts, stamped in the future): said once, and not asked for again
                log.warning(
                    "fridge_report_refused",
                    fridge_id=known.fridge_id,
                    report_id=report.report_id,
                    error=str(refused),
                )
                done.refused.append((known.fridge_id, report.report_id))
                continue
            known.last_report_at = report.taken_at
            known.stale = False
            done.applied.append((known.fridge_id, report.report_id))

    def _mark_stale(self, known: _Known, now: datetime, done: PollRound) -> None:
        silence = Cause(
            correlation_id=f"stale:{known.fridge_id}:{now.isoformat()}",
            causation_id="no count for too long",
            process=PROCESS,
        )
        try:
            with caused_by(silence):
                decided = self.stock.writer.execute(
                    known.fridge_id,
                    lambda f: (
                        f.mark_stale(now, self.stale_after),
                        f.last_report_at,
                        f.stale_since,
                    ),
                )
        except DomainError as error:
            log.warning("stale_mark_refused", fridge_id=known.fridge_id, error=str(error))
            return
        marked, known.last_report_at, stale_since = decided.value
        known.stale = stale_since is not None
        if marked:
            log.info("fridge_marked_stale", fridge_id=known.fridge_id)
            done.marked_stale.append(known.fridge_id)

    def _look(self, known: _Known) -> None:
        """Start from what the fridge itself knows: its newest count and its mark."""
        decided = self.stock.writer.execute(
            known.fridge_id, lambda f: (f.last_report_at, f.stale_since)
        )
        known.last_report_at, stale_since = decided.value
        known.stale = stale_since is not None
        known.loaded = True

    def _take(self, event: object) -> None:
        if isinstance(event, Fridge.Installed):
            self._fridges[event.originator_id] = _Known(event.fridge_id)
        elif isinstance(event, Fridge.Retired):
            self._fridges.pop(event.originator_id, None)


def run_poller(poller: Poller, stop: threading.Event, every: float) -> None:
    """Poll rounds until `stop`, with `every` seconds between one and the next."""
    while not stop.is_set():
        try:
            poller.poll_round(stop)
        except Exception:  # the store went away: log, and try again next round
            log.exception("poll_round_failed")
        stop.wait(every)
