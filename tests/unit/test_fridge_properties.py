"""One fridge driven through random days of deliveries, counts, orders and expiries.

The clock only moves forward (a rule advances it). A command may be refused with a domain
error, but a refused command must leave no events behind. After every step the fridge's
invariants hold, and replaying every event recorded so far rebuilds exactly the live fridge.
The test keeps its own account of reservations and deliveries from the events the fridge
recorded, and asks the fridge only what its users may ask.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.errors import AlreadyExists, DomainError, NotPaidYet, SoldOut
from domain.fridge import Fridge
from domain.values import ReleaseReason

MEALS = ("soup", "salad", "curry")
ORDERS = tuple(f"o-{n}" for n in range(6))
DELIVERIES = tuple(f"d-{n}" for n in range(6))
# Berlin, the evening before the switch to summer time: local days and UTC days differ.
START = datetime(2025, 3, 29, 20, 30, tzinfo=UTC)

meals = st.sampled_from(MEALS)
order_ids = st.sampled_from(ORDERS)
lines = st.dictionaries(meals, st.integers(1, 3), min_size=1, max_size=2)
counts = st.dictionaries(meals, st.integers(0, 8), max_size=3)


def install() -> Fridge:
    return Fridge(fridge_id="gym-1", venue_id="gym", city_id="berlin", timezone="Europe/Berlin")


def as_stored_before(event: Any) -> Any:
    """The event as one recorded before events said which batches moved: no `batches`, so
    it reads the class's default (None), as the store decodes such an event."""
    if "batches" not in vars(event) or isinstance(event, Fridge.MealsExpired):
        return event
    old = copy.copy(event)
    del vars(old)["batches"]
    return old


def replay(events: list[Any]) -> Fridge | None:
    fridge = None
    for event in events:
        fridge = event.mutate(fridge)
    return fridge


@dataclass(frozen=True)
class Booking:
    """An open reservation, as the fridge's events told it."""

    lines: dict[str, int]
    expires_at: datetime
    confirmed: bool = False
    missing: bool = False


class FridgeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.fridge = install()
        self.recorded: list[Any] = self.fridge.collect_events()
        self.open_orders: set[str] = set()  # what the test believes is still held
        self.booked: dict[str, Booking] = {}  # open reservations, from the events
        self.delivered: dict[str, tuple[dict[str, int], date]] = {}  # from the events
        self.reports = 0

    def apply(self, events: list[Any]) -> None:
        """Keep the test's account of reservations and deliveries from what was recorded."""
        for event in events:
            match event:
                case Fridge.MealsDelivered(delivery_id=delivery_id):
                    self.delivered[delivery_id] = (dict(event.lines), event.best_before)
                case Fridge.MealsReserved(order_id=order_id):
                    self.booked[order_id] = Booking(dict(event.lines), event.expires_at)
                case Fridge.ReservationConfirmed(order_id=order_id):
                    self.booked[order_id] = replace(self.booked[order_id], confirmed=True)
                case Fridge.ReservedMealsMissing(order_ids=order_ids):
                    for order_id in order_ids:
                        self.booked[order_id] = replace(self.booked[order_id], missing=True)
                case (
                    Fridge.ReservationReleased(order_id=order_id)
                    | Fridge.MealsPickedUp(order_id=order_id)
                ):
                    del self.booked[order_id]

    # ---- running one command ---------------------------------------------------------------

    def run(self, command: Callable[[], Any]) -> tuple[Any, DomainError | None]:
        """Run a command; a refusal must leave nothing pending. Record what it decided."""
        assert self.fridge.pending_events == []
        flagged_before = {o: booking.missing for o, booking in self.booked.items()}
        try:
            result = command()
        except DomainError as error:
            assert self.fridge.pending_events == [], f"{error!r} left events behind"
            return None, error
        events = self.fridge.collect_events()
        flagged = [
            order_id
            for event in events
            if type(event).__name__ == "ReservedMealsMissing"
            for order_id in event.order_ids
        ]
        assert len(flagged) == len(set(flagged)), f"flagged twice in one command: {flagged}"
        for order_id in flagged:
            assert flagged_before.get(order_id) is False, f"{order_id} flagged again"
        self.recorded.extend(events)
        self.apply(events)
        return result, None

    def today(self) -> date:
        return self.fridge.today(self.now)

    def shortfall_is_flagged(self) -> None:
        """After reconciling, every unit held but not there belongs to a flagged reservation."""
        today = self.today()
        for meal_id in MEALS:
            flagged = sum(b.lines.get(meal_id, 0) for b in self.booked.values() if b.missing)
            gap = self.fridge.held(meal_id) - self.fridge.on_hand(meal_id, today)
            assert gap <= flagged, (meal_id, gap, flagged)

    def some_order(self, data: st.DataObject) -> str:
        """Mostly an order the fridge holds, sometimes any order (closed, unknown)."""
        held = sorted(self.fridge.open_orders())
        return data.draw(st.sampled_from(held) | order_ids if held else order_ids)

    @initialize(stock=st.fixed_dictionaries({meal_id: st.integers(2, 10) for meal_id in MEALS}))
    def first_delivery(self, stock: dict[str, int]) -> None:
        best_before = self.today() + timedelta(days=1)
        done, _ = self.run(lambda: self.fridge.deliver("first", stock, best_before, self.now))
        assert done

    # ---- the clock -------------------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 5, 10, 60, 6 * 60, 26 * 60]))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    # ---- kitchen and fridge cloud ----------------------------------------------------------

    @rule(
        delivery_id=st.sampled_from(DELIVERIES),
        lines=st.dictionaries(meals, st.integers(1, 6), min_size=1),
        days=st.integers(-1, 3),
    )
    def deliver(self, delivery_id: str, lines: dict[str, int], days: int) -> None:
        before = {m: self.fridge.on_hand(m) for m in MEALS}
        best_before = self.today() + timedelta(days=days)
        repeat = delivery_id in self.delivered
        same = repeat and self.delivered[delivery_id] == (lines, best_before)

        done, error = self.run(
            lambda: self.fridge.deliver(delivery_id, lines, best_before, self.now)
        )

        if done:
            assert not repeat and days >= 0
            for meal_id in MEALS:
                expected = before[meal_id] + lines.get(meal_id, 0)
                assert self.fridge.on_hand(meal_id) == expected
        else:
            assert repeat or days < 0, error
            assert isinstance(error, AlreadyExists) == (repeat and not same), error
            assert {m: self.fridge.on_hand(m) for m in MEALS} == before

    @rule(counts=counts, minutes_ago=st.integers(-10, 3 * 60))
    def report_counts(self, counts: dict[str, int], minutes_ago: int) -> None:
        self.reports += 1
        taken_at = self.now - timedelta(minutes=minutes_ago)
        last = self.fridge.last_report_at
        untouched = {m: self.fridge.on_hand(m) for m in MEALS}

        applied, _ = self.run(
            lambda: self.fridge.report_counts(f"r-{self.reports}", taken_at, counts, self.now)
        )

        if applied:
            assert last is None or taken_at > last
            assert self.fridge.last_report_at == taken_at
            for meal_id in MEALS:
                expected = counts.get(meal_id, untouched[meal_id])
                assert self.fridge.on_hand(meal_id) == expected
            self.shortfall_is_flagged()
        else:
            assert self.fridge.last_report_at == last
            assert {m: self.fridge.on_hand(m) for m in MEALS} == untouched

    @rule()
    def discard_expired(self) -> None:
        discarded, _ = self.run(lambda: self.fridge.discard_expired(self.now))

        for meal_id in MEALS:
            assert all(best_before >= self.today() for best_before in self.fridge.shelf(meal_id))
        assert all(units > 0 for units in discarded.values())
        self.shortfall_is_flagged()

    @rule()
    def take_offline(self) -> None:
        self.run(lambda: self.fridge.take_offline("maintenance"))

    @rule()
    def bring_online(self) -> None:
        self.run(self.fridge.bring_online)

    # ---- orders ----------------------------------------------------------------------------

    @rule(order_id=order_ids, lines=lines, window=st.integers(0, 20))
    def reserve(self, order_id: str, lines: dict[str, int], window: int) -> None:
        today = self.today()
        available = {m: self.fridge.available(m, today) for m in MEALS}
        holds = {m: self.fridge.held(m) for m in MEALS}

        reserved, error = self.run(
            lambda: self.fridge.reserve(
                order_id, lines, self.now + timedelta(minutes=window), self.now
            )
        )

        if any(units > available[meal_id] for meal_id, units in lines.items()):
            assert not reserved, f"reserved {lines} with only {available} available"
        if isinstance(error, SoldOut):
            assert error.available == {m: available[m] for m in lines}
        if reserved:
            self.open_orders.add(order_id)
            for meal_id in MEALS:
                expected = holds[meal_id] + lines.get(meal_id, 0)
                assert self.fridge.held(meal_id) == expected
        else:
            assert {m: self.fridge.held(m) for m in MEALS} == holds

    @rule(order_id=order_ids, lines=lines, window=st.integers(0, 20))
    def reserve_more(self, order_id: str, lines: dict[str, int], window: int) -> None:
        """Orders are the busiest traffic: a second rule makes them twice as likely."""
        self.reserve(order_id, lines, window)

    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        order_id = self.some_order(data)
        self.run(lambda: self.fridge.confirm(order_id))

    @rule(data=st.data())
    def confirm_more(self, data: st.DataObject) -> None:
        self.confirm(data)

    @rule(data=st.data(), reason=st.sampled_from(ReleaseReason))
    def release(self, data: st.DataObject, reason: ReleaseReason) -> None:
        order_id = self.some_order(data)
        released, _ = self.run(lambda: self.fridge.release(order_id, reason, self.now))

        if released:
            self.open_orders.discard(order_id)
        assert order_id not in self.fridge.open_orders() or not released

    @rule(data=st.data())
    def pick_up(self, data: st.DataObject) -> None:
        order_id = self.some_order(data)
        reservation = self.booked.get(order_id)
        before = {m: self.fridge.on_hand(m) for m in MEALS}

        picked_up, error = self.run(lambda: self.fridge.pick_up(order_id, self.now))

        if isinstance(error, NotPaidYet):
            assert reservation is not None and not reservation.confirmed
        if picked_up:
            assert reservation is not None and reservation.confirmed
            assert self.fridge.reservation_status(order_id) == "picked_up"
            self.open_orders.discard(order_id)
            for meal_id in MEALS:
                taken = reservation.lines.get(meal_id, 0)
                assert self.fridge.on_hand(meal_id) == max(0, before[meal_id] - taken)

    @rule()
    def expire_reservations(self) -> None:
        before = dict(self.booked)

        expired, _ = self.run(lambda: self.fridge.expire_reservations(self.now))

        for order_id in expired:
            assert not before[order_id].confirmed
            assert before[order_id].expires_at <= self.now
            assert self.fridge.reservation_status(order_id) == "expired"
            self.open_orders.discard(order_id)
        for order_id in self.fridge.open_orders():
            assert self.fridge.reservation_status(order_id) == "confirmed" or (
                self.booked[order_id].expires_at > self.now
            )

    # ---- after every step ------------------------------------------------------------------

    @invariant()
    def nothing_is_pending(self) -> None:
        assert self.fridge.pending_events == []

    @invariant()
    def available_is_never_negative(self) -> None:
        today = self.today()
        for meal_id in {*MEALS, *self.fridge.meal_ids()}:
            assert self.fridge.available(meal_id, today) >= 0
            assert self.fridge.on_hand(meal_id) >= 0

    @invariant()
    def holds_are_the_sum_of_open_reservations(self) -> None:
        expected = dict.fromkeys(MEALS, 0)
        for booking in self.booked.values():
            for meal_id, units in booking.lines.items():
                expected[meal_id] += units
        assert {m: self.fridge.held(m) for m in MEALS} == expected

    @invariant()
    def closed_reservations_hold_nothing(self) -> None:
        assert self.fridge.open_orders() == list(self.booked)
        assert set(self.booked) == self.open_orders
        for order_id in ORDERS:
            held = self.fridge.reservation_status(order_id) in ("held", "confirmed")
            assert held == (order_id in self.open_orders)

    @invariant()
    def batches_hold_whole_units(self) -> None:
        for meal_id in MEALS:
            shelf = self.fridge.shelf(meal_id)
            assert all(units > 0 for units in shelf.values())
            assert sum(shelf.values()) == self.fridge.on_hand(meal_id)

    @invariant()
    def replaying_the_events_rebuilds_the_fridge(self) -> None:
        rebuilt = replay(self.recorded)
        assert rebuilt == self.fridge
        assert rebuilt is not None and rebuilt.version == len(self.recorded) - 1

    @invariant()
    def events_stored_before_they_said_what_moved_rebuild_the_same_fridge(self) -> None:
        assert replay([as_stored_before(event) for event in self.recorded]) == self.fridge


FridgeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestFridge = FridgeMachine.TestCase


@settings(max_examples=200, deadline=None)
@given(
    stock=st.dictionaries(meals, st.integers(1, 6), min_size=1),
    held=st.dictionaries(meals, st.integers(1, 3)),
    wanted=lines,
    days=st.integers(0, 2),
)
def test_reserve_succeeds_exactly_when_every_line_fits(
    stock: dict[str, int], held: dict[str, int], wanted: dict[str, int], days: int
) -> None:
    fridge = install()
    fridge.deliver("d-1", stock, START.date(), START)
    now = START + timedelta(days=days)  # from the next day on, the batch has expired
    for n, (meal_id, units) in enumerate(held.items()):
        with suppress(SoldOut):
            fridge.reserve(f"h-{n}", {meal_id: units}, now + timedelta(minutes=10), now)
    fridge.collect_events()
    today = fridge.today(now)
    available = {m: fridge.available(m, today) for m in wanted}

    try:
        reserved = fridge.reserve("o-1", wanted, now + timedelta(minutes=10), now)
    except SoldOut as error:
        assert error.available == available
        assert any(units > available[m] for m, units in wanted.items())
        assert fridge.pending_events == []
    else:
        assert reserved is True
        assert all(units <= available[m] for m, units in wanted.items())
        assert {m: fridge.available(m, today) for m in wanted} == {
            m: available[m] - units for m, units in wanted.items()
        }
