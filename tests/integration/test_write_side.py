"""The write side's services on each store: given a world, when a command, then its effects."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from application.errors import NotFound, NotYourOrder, StoreUnavailable
from domain.errors import (
    AlreadyExists,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidRequest,
    ReservationClosed,
    SoldOut,
)
from domain.fridge import Fridge
from domain.order import OrderStatus
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock, unique
from tests.integration.world import make_world, place_and_open


def fridge_now(side: WriteSide, fridge_id: str) -> Fridge:
    """The fridge as stored, read through a fresh load (not the writer's memory)."""
    side.writer.forget(fridge_id)
    return side.catalogue.fridge(fridge_id)


def available(side: WriteSide, fridge_id: str, meal_id: str) -> int:
    fridge = fridge_now(side, fridge_id)
    return fridge.available(meal_id, fridge.today(side.clock()))


def test_registering_the_same_thing_twice_is_a_repeat_and_different_details_conflict(
    side: WriteSide,
) -> None:
    city = unique("city")
    assert side.catalogue.register_city(city, "Berlin", "Europe/Berlin").created
    again = side.catalogue.register_city(city, "Berlin", "Europe/Berlin")
    assert not again.created
    with pytest.raises(AlreadyExists):
        side.catalogue.register_city(city, "Berlin", "Europe/Lisbon")


def test_a_venue_in_an_unknown_city_is_not_found(side: WriteSide) -> None:
    with pytest.raises(NotFound, match="city"):
        side.catalogue.register_venue(unique("venue"), unique("nowhere"), "Gym")


def test_a_placed_order_holds_stock_and_answers_with_its_position(side: WriteSide) -> None:
    world = make_world(side, soup_units=3)
    placed = side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 2})
    assert placed.status == OrderStatus.PLACED
    assert placed.total == Decimal("13.00")
    assert placed.currency == "EUR"
    assert placed.payment_due_by == side.clock() + timedelta(minutes=10)
    assert placed.position is not None and placed.position > 0
    assert available(side, world.fridge_id, world.soup) == 1


def test_the_same_idempotency_key_and_body_return_the_same_order_reserving_once(
    side: WriteSide,
) -> None:
    world = make_world(side, soup_units=3)
    first = side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 2})
    again = side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 2})
    assert again.order_id == first.order_id and not again.created
    assert available(side, world.fridge_id, world.soup) == 1
    with pytest.raises(IdempotencyKeyReused):
        side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 1})
    # Another customer's identical key is another order.
    bob = side.ordering.place("bob", "key-1", world.fridge_id, {world.soup: 1})
    assert bob.order_id != first.order_id


def test_sold_out_refuses_the_whole_order_and_says_what_is_left(side: WriteSide) -> None:
    world = make_world(side, soup_units=3, salad_units=1)
    with pytest.raises(SoldOut) as refused:
        side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2, world.salad: 2})
    assert refused.value.available == {world.soup: 3, world.salad: 1}
    assert available(side, world.fridge_id, world.soup) == 3
    with pytest.raises(NotFound, match="order"):
        side.ordering.order(refused.value.fridge_id)


def test_unknown_fridge_and_unknown_meal_are_not_found(side: WriteSide) -> None:
    world = make_world(side)
    with pytest.raises(NotFound, match="fridge"):
        side.ordering.place("alice", "k1", unique("fridge"), {world.soup: 1})
    with pytest.raises(NotFound, match="meal"):
        side.ordering.place("alice", "k2", world.fridge_id, {unique("meal"): 1})
    with pytest.raises(InvalidRequest):
        side.ordering.place("alice", "k3", world.fridge_id, {world.soup: 0})


def test_cancelling_puts_the_meals_back_and_a_second_cancel_changes_nothing(
    side: WriteSide,
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    with pytest.raises(NotYourOrder):
        side.ordering.cancel(placed.order_id, customer_id="mallory", fridge_id=world.fridge_id)
    # Cancelled before the flow opened the order: cancelling opens it from the reservation.
    cancelled = side.ordering.cancel(
        placed.order_id, customer_id="alice", fridge_id=world.fridge_id
    )
    assert cancelled.status == OrderStatus.CANCELLED
    assert available(side, world.fridge_id, world.soup) == 2
    assert side.ordering.cancel(placed.order_id, customer_id="alice").status == "cancelled"
    assert available(side, world.fridge_id, world.soup) == 2


def test_paid_orders_are_ready_then_picked_up_and_leave_the_fridge(side: WriteSide) -> None:
    world = make_world(side, soup_units=3)
    placed = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 2})
    ready = side.ordering.authorise_payment(placed.order_id, "psp-123")
    assert ready.status == OrderStatus.READY_FOR_PICKUP
    done = side.ordering.pick_up(world.fridge_id, placed.order_id)
    assert done.status == OrderStatus.PICKED_UP
    with pytest.raises(ReservationClosed):  # taken out: too late to cancel
        side.ordering.cancel(placed.order_id)
    fridge = fridge_now(side, world.fridge_id)
    assert fridge.on_hand(world.soup) == 1 and fridge.held(world.soup) == 0


def test_unpaid_orders_expire_after_the_deadline_and_release_their_meals(
    side: WriteSide, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=2)
    placed = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 2})
    with pytest.raises(IllegalTransition):
        side.ordering.expire(placed.order_id)
    clock.advance(minutes=11)
    assert side.ordering.expire(placed.order_id).status == OrderStatus.EXPIRED
    assert available(side, world.fridge_id, world.soup) == 2


def test_a_reservation_without_an_order_expires_like_any_unpaid_one(
    side: WriteSide, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=2)
    due = clock.now + timedelta(minutes=10)
    now = clock.now
    side.writer.execute(world.fridge_id, lambda f: f.reserve("orphan", {world.soup: 2}, due, now))
    clock.advance(minutes=10)
    assert side.stock.expire_reservations(world.fridge_id).value == ["orphan"]
    assert available(side, world.fridge_id, world.soup) == 2


def test_payment_after_the_reservation_expired_refunds_the_order(
    side: WriteSide, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=1)
    placed = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 1})
    clock.advance(minutes=11)
    side.stock.expire_reservations(world.fridge_id)
    assert side.ordering.authorise_payment(placed.order_id, "psp-late").status == "refunded"


def test_deliveries_and_count_reports_are_idempotent_and_counts_are_the_truth(
    side: WriteSide, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=0, salad_units=0)
    best_before = (clock.now + timedelta(days=2)).date()
    assert side.stock.deliver(world.fridge_id, "d-1", {world.soup: 5}, best_before).value
    assert not side.stock.deliver(world.fridge_id, "d-1", {world.soup: 5}, best_before).value
    assert available(side, world.fridge_id, world.soup) == 5
    taken_at = clock.now
    assert side.stock.report_counts(world.fridge_id, "r-1", taken_at, {world.soup: 3}).value
    assert available(side, world.fridge_id, world.soup) == 3
    late = taken_at - timedelta(minutes=5)
    assert not side.stock.report_counts(world.fridge_id, "r-0", late, {world.soup: 9}).value
    assert not side.stock.report_counts(world.fridge_id, "r-1", taken_at, {world.soup: 3}).value
    assert available(side, world.fridge_id, world.soup) == 3


def test_state_survives_a_restart(store_settings: Settings, clock: FakeClock) -> None:
    first = build_write_side(store_settings, clock=clock)
    world = make_world(first, soup_units=4)
    placed = first.ordering.place("alice", "k", world.fridge_id, {world.soup: 3})
    first.close()
    second = build_write_side(store_settings, clock=clock)
    try:
        # The order is opened from the stored reservation, whichever process does it.
        opened = second.ordering.ensure_order(placed.order_id, world.fridge_id)
        assert (opened.status, opened.total) == (OrderStatus.PLACED, placed.total)
        assert available(second, world.fridge_id, world.soup) == 1
    finally:
        second.close()


def test_an_unreachable_postgres_is_one_line_naming_the_setting() -> None:
    settings = Settings(
        store="postgres", postgres_dsn="postgresql://postgres:hunter2@127.0.0.1:1/farmacy"
    )
    with pytest.raises(StoreUnavailable) as unavailable:
        build_write_side(settings)
    message = str(unavailable.value)
    assert "FARMACY_POSTGRES_DSN" in message and "\n" not in message
    assert "hunter2" not in message
