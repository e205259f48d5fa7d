"""Clearing a fridge at midnight, whenever and however often it is asked (property test).

Given a fridge stocked with batches of random best-before dates and reservations over them,
when `clear_expired` is asked at random moments (in any order: a scheduler restarted, two at
once, a clock that went back), then no batch is ever taken off twice, what is left on the
shelf is what is fresh on the latest local day asked, and no reservation is released twice.
"""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.fridge import Fridge
from domain.shelf import local_day

START = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Berlin springs forward on the 29th
ZONE = "Europe/Berlin"

batches = st.lists(
    st.tuples(st.sampled_from(["soup", "salad"]), st.integers(0, 4), st.integers(1, 4)),
    min_size=1,
    max_size=6,
)
moments = st.lists(st.integers(0, 6 * 24 * 4), min_size=1, max_size=12)  # quarter hours
orders = st.lists(st.tuples(st.sampled_from(["soup", "salad"]), st.integers(1, 3)), max_size=4)


@given(batches, orders, moments)
def test_each_batch_is_cleared_once_and_what_is_left_is_fresh(
    stocked: list[tuple[str, int, int]], wanted: list[tuple[str, int]], asked: list[int]
) -> None:
    fridge = Fridge(fridge_id="f", venue_id="v", city_id="c", timezone=ZONE)
    first_day = local_day(START, ZONE)
    for n, (meal, days, units) in enumerate(stocked):
        fridge.deliver(f"d{n}", {meal: units}, first_day + timedelta(days=days), START)
    for n, (meal, units) in enumerate(wanted):
        with suppress(DomainError):  # sold out: not reserved
            fridge.reserve(f"o{n}", {meal: units}, START + timedelta(hours=1), START)
    latest: date | None = None
    for quarter in asked:
        now = START + timedelta(minutes=15 * quarter)
        fridge.clear_expired(now)
        today = local_day(now, ZONE)
        latest = today if latest is None or today > latest else latest
    events = fridge.collect_events()
    cleared = Counter(
        (b["meal_id"], b["best_before"])
        for e in events
        if isinstance(e, Fridge.MealsExpired)
        for b in e.batches
    )
    assert all(times == 1 for times in cleared.values())
    released = Counter(e.order_id for e in events if isinstance(e, Fridge.ReservationReleased))
    assert all(times == 1 for times in released.values())
    assert latest is not None
    for meal in ("soup", "salad"):
        assert all(best_before >= latest for best_before in fridge.shelf(meal))
        # every batch fresh on the latest day asked is still there, whole
        delivered: Counter[date] = Counter()
        for m, days, units in stocked:
            if m == meal and first_day + timedelta(days=days) >= latest:
                delivered[first_day + timedelta(days=days)] += units
        assert fridge.shelf(meal) == dict(delivered)
        # and what reservations still hold never exceeds what is fresh
        assert fridge.held(meal) <= fridge.on_hand(meal, latest)
