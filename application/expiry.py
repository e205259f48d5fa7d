"""Fresh meals are not sold past their best-before: at local midnight in each fridge's city,
the expiry scheduler takes the batches whose day has ended off the shelf.

For each fridge, once per local day (a fridge's day is its city's: `domain/shelf.local_day`,
so daylight-saving days are as long as the zone says), the scheduler asks the fridge to
`clear_expired`: one decision in the fridge's turn that records `MealsExpired` (the waste,
by batch) and releases the reservations that lost their meals with it (the order flow then
voids or refunds them). It keeps no state that matters: started again after a crash, it
clears every fridge once at once, and a batch already taken off is not there to take again,
so each batch expires exactly once however often the scheduler dies or runs twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog

from application.causes import caused_by
from application.clock import Clock
from application.following import Following
from application.fridge_writer import FridgeWriter
from application.store import EventStore
from domain.causes import Cause
from domain.errors import DomainError
from domain.fridge import Fridge
from domain.shelf import local_day

log = structlog.get_logger(__name__)
TICK_SECONDS = 30.0
"""How often the scheduler looks for new fridges between midnights; it wakes at each
midnight itself."""


@dataclass(frozen=True)
class Cleared:
    """What one fridge's midnight took off its shelf and released."""

    fridge_id: str
    day: date  # the fridge's local day that began
    units: dict[str, int]
    released: list[str]
    position: int | None


@dataclass(frozen=True)
class _Place:
    fridge_id: str
    timezone: str


class Expiry:
    def __init__(self, store: EventStore, writer: FridgeWriter, clock: Clock) -> None:
        self.writer = writer
        self.clock = clock
        self._fridges: dict[UUID, _Place] = {}
        self._cleared_for: dict[str, date] = {}
        self._following = Following(store, [Fridge.Installed, Fridge.Retired], self._take)

    def tick(self, stop: threading.Event | None = None) -> list[Cleared]:
        """Clear every fridge whose local day has turned since it was last cleared (every
        fridge, the first time); what was taken off or released. With `stop` set it ends
        after the fridge at hand (the rest are cleared when it starts again)."""
        now = self.clock()
        self._following.refresh()
        cleared: list[Cleared] = []
        for place in list(self._fridges.values()):
            if stop is not None and stop.is_set():
                break
            today = local_day(now, place.timezone)
            if self._cleared_for.get(place.fridge_id) == today:
                continue
            # One conversation per fridge and day: the orders it releases carry it on.
            midnight = Cause(
                correlation_id=f"expiry:{place.fridge_id}:{today.isoformat()}",
                causation_id="midnight",
                process="expiry",
            )
            try:
                with caused_by(midnight):
                    done = self.writer.execute(place.fridge_id, lambda f: f.clear_expired(now))
            except DomainError as error:  # nothing the next tick would do differently
                log.warning("expiry_refused", fridge_id=place.fridge_id, error=str(error))
                self._cleared_for[place.fridge_id] = today
                continue
            self._cleared_for[place.fridge_id] = today
            units, released = done.value
            if units or released:
                log.info(
                    "meals_expired",
                    fridge_id=place.fridge_id,
                    correlation_id=midnight.correlation_id,
                    day=today.isoformat(),
                    units=units,
                    released=released,
                )
                cleared.append(Cleared(place.fridge_id, today, units, released, done.position))
        return cleared

    def next_midnight(self, now: datetime) -> datetime | None:
        """The first local midnight after `now` among the fridges' zones."""
        zones = {place.timezone for place in self._fridges.values()}
        return min((_midnight_after(now, zone) for zone in zones), default=None)

    def _take(self, event: object) -> None:
        if isinstance(event, Fridge.Installed):
            self._fridges[event.originator_id] = _Place(event.fridge_id, event.timezone)
        elif isinstance(event, Fridge.Retired):
            self._fridges.pop(event.originator_id, None)


def _midnight_after(now: datetime, zone: str) -> datetime:
    """The next start of a local day in `zone`. Where a zone springs forward at midnight,
    00:00 does not exist: read with fold=0 it is the instant the new day's clock begins."""
    tz = ZoneInfo(zone)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=tz).astimezone(UTC)


def run_expiry(
    expiry: Expiry, clock: Clock, stop: threading.Event, every: float = TICK_SECONDS
) -> None:
    """Tick until `stop`: at once, then at each local midnight and every `every` seconds."""
    while not stop.is_set():
        try:
            expiry.tick(stop)
        except Exception:  # the store went away: log, and try again at the next tick
            log.exception("expiry_tick_failed")
        now = clock()
        midnight = expiry.next_midnight(now)
        wait = every
        if midnight is not None:
            wait = min(every, max(0.0, (midnight - now).total_seconds()))
        stop.wait(wait)
