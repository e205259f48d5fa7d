"""The expiry scheduler takes expired batches off the shelf at each fridge's local midnight.

Given fridges in cities of different time zones stocked with batches, when the scheduler
ticks (its clock moved by hand: no real waiting), then a batch is on sale until the last
second of its best-before day in its city and off the shelf from the first second of the
next, on ordinary days and on both daylight-saving days; however often the scheduler is
killed and started again around midnight, or runs twice at once, each batch expires once and
a reservation that lost its meals is released once.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from application.expiry import Expiry
from application.fulfilment import Fulfilment
from domain.fridge import Fridge
from domain.order import OrderStatus
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock, unique
from tests.payment_fakes import AlwaysAuthorise

SECOND = timedelta(seconds=1)


def fridge_in(side: WriteSide, zone: str) -> str:
    city, venue, fridge = unique("city"), unique("venue"), unique("fridge")
    side.catalogue.register_city(city, zone, zone)
    side.catalogue.register_venue(venue, city, "Venue")
    side.catalogue.install_fridge(fridge, venue)
    return fridge


def events(side: WriteSide, fridge_id: str) -> list[Any]:
    return list(side.store.events.get(Fridge.create_id(fridge_id)))


def expired_batches(side: WriteSide, fridge_id: str) -> Counter[tuple[str, str]]:
    return Counter(
        (batch["meal_id"], batch["best_before"])
        for event in events(side, fridge_id)
        if isinstance(event, Fridge.MealsExpired)
        for batch in event.batches
    )


def releases(side: WriteSide, fridge_id: str) -> Counter[str]:
    return Counter(
        event.order_id
        for event in events(side, fridge_id)
        if isinstance(event, Fridge.ReservationReleased)
    )


def on_shelf(side: WriteSide, fridge_id: str, meal_id: str) -> dict[date, int]:
    side.writer.forget(fridge_id)
    return side.catalogue.fridge(fridge_id).shelf(meal_id)


@pytest.fixture
def soup(side: WriteSide) -> str:
    meal = unique("soup")
    side.catalogue.register_meal(meal, "Soup", "6.50", "EUR")
    return meal


def stock(side: WriteSide, clock: FakeClock, fridge: str, soup: str, *days: date) -> None:
    for day in days:
        side.stock.deliver(fridge, unique("delivery"), {soup: 3}, day)


def test_each_city_expires_at_its_own_midnight(
    side: WriteSide, clock: FakeClock, soup: str
) -> None:
    clock.now = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    berlin, new_york = fridge_in(side, "Europe/Berlin"), fridge_in(side, "America/New_York")
    for fridge in (berlin, new_york):
        stock(side, clock, fridge, soup, date(2026, 12, 10), date(2026, 12, 11))
    expiry = Expiry(side.store, side.writer, clock)
    expiry.tick()  # the first tick clears every fridge once: nothing is past yet
    berlin_midnight = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)  # 00:00 CET on the 11th
    new_york_midnight = datetime(2026, 12, 11, 5, 0, tzinfo=UTC)  # 00:00 EST on the 11th

    clock.now = berlin_midnight - SECOND
    assert expiry.tick() == []
    clock.now = berlin_midnight
    cleared = expiry.tick()
    assert [(c.fridge_id, c.day, c.units) for c in cleared] == [
        (berlin, date(2026, 12, 11), {soup: 3})
    ]
    assert on_shelf(side, berlin, soup) == {date(2026, 12, 11): 3}
    assert on_shelf(side, new_york, soup) == {date(2026, 12, 10): 3, date(2026, 12, 11): 3}

    clock.now = new_york_midnight - SECOND
    assert expiry.tick() == []
    clock.now = new_york_midnight
    assert [c.fridge_id for c in expiry.tick()] == [new_york]
    assert expiry.next_midnight(new_york_midnight) == datetime(2026, 12, 11, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "best_before", "midnight"),
    [
        # Berlin springs forward on 29 March: that day is 23 hours long
        ("Europe/Berlin", date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),
        ("Europe/Berlin", date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),
        # and falls back on 25 October: 25 hours
        ("Europe/Berlin", date(2026, 10, 24), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
        ("Europe/Berlin", date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),
        # Santiago moves its clocks at midnight itself: on 6 September 00:00 never happens
        ("America/Santiago", date(2026, 9, 5), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
        # and on 5 April the hour before midnight happens twice
        ("America/Santiago", date(2026, 4, 4), datetime(2026, 4, 5, 4, 0, tzinfo=UTC)),
    ],
)
def test_daylight_saving_days_end_at_their_own_midnight(
    side: WriteSide, clock: FakeClock, soup: str, zone: str, best_before: date, midnight: datetime
) -> None:
    clock.now = midnight - timedelta(days=2)
    fridge = fridge_in(side, zone)
    stock(side, clock, fridge, soup, best_before)
    expiry = Expiry(side.store, side.writer, clock)
    clock.now = midnight - SECOND
    expiry.tick()
    assert on_shelf(side, fridge, soup) == {best_before: 3}
    assert expiry.next_midnight(clock.now) == midnight
    clock.now = midnight
    assert [c.units for c in expiry.tick()] == [{soup: 3}]
    assert on_shelf(side, fridge, soup) == {}
    assert expired_batches(side, fridge) == {(soup, best_before.isoformat()): 1}


def test_killed_and_started_again_around_midnight_each_batch_expires_and_releases_once(
    side: WriteSide, clock: FakeClock, soup: str
) -> None:
    clock.now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    fridges = [fridge_in(side, "Europe/Berlin") for _ in range(4)]
    for fridge in fridges:
        stock(side, clock, fridge, soup, date(2026, 12, 10), date(2026, 12, 12))
    # at the first fridge someone reserved two soups; one of the fresh batch's three is sold
    # out from under it at midnight: 3 fresh, 2 + 2 held after the old batch is gone
    placed = [
        side.ordering.place(f"c{n}", unique("key"), fridges[0], {soup: 2}).order_id
        for n in range(3)
    ]
    for order_id in placed:
        side.ordering.ensure_order(order_id, fridges[0])  # fulfilment opened them
    midnight = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)

    clock.now = midnight - SECOND
    Expiry(side.store, side.writer, clock).tick()  # a scheduler that then dies
    clock.now = midnight
    dying = Expiry(side.store, side.writer, clock)
    real_execute, calls = side.writer.execute, []

    def killed_after_two(fridge_id: str, decide: Any) -> Any:
        if len(calls) == 2:
            raise SystemExit("killed")  # the process dies between two fridges
        calls.append(fridge_id)
        return real_execute(fridge_id, decide)

    side.writer.execute = killed_after_two  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        dying.tick()
    side.writer.execute = real_execute  # type: ignore[method-assign]
    for _ in range(3):  # started again, three times over, a second apart
        Expiry(side.store, side.writer, clock).tick()
        clock.advance(seconds=1)

    for fridge in fridges:
        assert expired_batches(side, fridge) == {(soup, "2026-12-10"): 1}
    released = releases(side, fridges[0])
    assert released == {placed[2]: 1, placed[1]: 1}  # the newest lose; once each
    # the order flow then cancels them, and releases nothing twice
    flow = Fulfilment(side.ordering, AlwaysAuthorise())
    for event in events(side, fridges[0]):
        if isinstance(event, Fridge.ReservedMealsMissing):
            flow.handle(event)
            flow.handle(event)  # at least once: a repeat
    assert releases(side, fridges[0]) == released
    assert side.ordering.order(placed[2]).status == OrderStatus.CANCELLED
    assert side.ordering.order(placed[0]).status == OrderStatus.PLACED


def test_two_schedulers_at_once_expire_each_batch_once(
    store_settings: Settings, clock: FakeClock
) -> None:
    """Two processes' schedulers (their own write sides) racing over the same fridges."""
    sides = [build_write_side(store_settings, clock=clock) for _ in range(2)]
    try:
        side = sides[0]
        soup = unique("soup")
        side.catalogue.register_meal(soup, "Soup", "6.50", "EUR")
        clock.now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
        fridges = [fridge_in(side, "Europe/Berlin") for _ in range(6)]
        for fridge in fridges:
            stock(side, clock, fridge, soup, date(2026, 12, 10), date(2026, 12, 11))
        clock.now = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
        schedulers = [Expiry(s.store, s.writer, clock) for s in sides]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(expiry: Expiry) -> None:
            try:
                start.wait(timeout=10)
                expiry.tick()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        for fridge in fridges:
            assert expired_batches(side, fridge) == {(soup, "2026-12-10"): 1}
    finally:
        for s in sides:
            s.close()
