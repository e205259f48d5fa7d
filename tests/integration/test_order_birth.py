"""The order is born in the fridge: one append, repeats decided by the fridge, prices in memory.

Given a world on each store; when orders are placed (from processes that die, from processes
racing with one key); then the fridge holds exactly what the orders it gave birth to say.
"""

from __future__ import annotations

import multiprocessing
import signal
from decimal import Decimal
from typing import Any

import pytest

from application.errors import NotFound
from domain.catalogue import Meal
from domain.errors import IdempotencyKeyReused, SoldOut
from domain.fridge import Fridge
from domain.order import Order
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import World, dying_after_a_fridge_append, make_world

SPAWN = multiprocessing.get_context("spawn")


def stored_fridge(side: WriteSide, fridge_id: str) -> Fridge:
    side.writer.forget(fridge_id)
    return side.catalogue.fridge(fridge_id)


def _place_then_die(settings: Settings, world: World) -> None:
    """A process killed the moment the fridge's append returns, before anything else."""
    side = dying_after_a_fridge_append(settings)
    side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 1})


def test_a_retry_with_another_body_after_a_crash_reserves_nothing_more(
    side: WriteSide, store_settings: Settings
) -> None:
    """The oversell of 2026-12: the process dies right after the fridge's append, and the
    client retries with the same key but 3 units instead of 1."""
    world = make_world(side, soup_units=3, salad_units=0)
    crashed = SPAWN.Process(target=_place_then_die, args=(store_settings, world))
    crashed.start()
    crashed.join(timeout=120)
    assert crashed.exitcode == -signal.SIGKILL

    with pytest.raises(IdempotencyKeyReused):
        side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 3})

    fridge = stored_fridge(side, world.fridge_id)
    assert fridge.held(world.soup) == 1
    assert fridge.available(world.soup, fridge.today(side.clock())) == 2
    # The retry with the body that was sent first is that very order, reserved once.
    again = side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 1})
    assert not again.created and again.total == Decimal("6.50")
    # Another customer is sold what is left, and no more: 3 meals promised from 3.
    assert side.ordering.place("bob", "key-1", world.fridge_id, {world.soup: 2}).created
    with pytest.raises(SoldOut):
        side.ordering.place("carol", "key-1", world.fridge_id, {world.soup: 1})


def _place_when_released(
    settings: Settings, world: World, units: int, start: Any, answers: Any
) -> None:
    side = build_write_side(settings, clock=FakeClock())
    try:
        start.wait(timeout=60)
        try:
            placed = side.ordering.place("alice", "same-key", world.fridge_id, {world.soup: units})
            answers.put(("created" if placed.created else "repeat", units, placed.order_id))
        except IdempotencyKeyReused:
            answers.put(("refused", units, ""))
    finally:
        side.close()


@pytest.mark.slow
def test_4_processes_sending_one_key_with_different_bodies_reserve_exactly_once(
    side: WriteSide, store_settings: Settings
) -> None:
    world = make_world(side, soup_units=20, salad_units=0)
    start, answers = SPAWN.Barrier(4), SPAWN.Queue()
    processes = [
        SPAWN.Process(
            target=_place_when_released, args=(store_settings, world, units, start, answers)
        )
        for units in (1, 2, 3, 4)
    ]
    for process in processes:
        process.start()
    results = [answers.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    created = [(units, order_id) for outcome, units, order_id in results if outcome == "created"]
    assert len(created) == 1, results
    assert sorted(outcome for outcome, _, _ in results) == ["created"] + ["refused"] * 3
    units, order_id = created[0]
    fridge = stored_fridge(side, world.fridge_id)
    assert fridge.open_orders() == [order_id]
    assert fridge.held(world.soup) == units
    order = side.ordering.ensure_order(order_id, world.fridge_id)
    assert order.meal_lines() == {world.soup: units}
    assert order.total == Decimal("6.50") * units


def test_placing_reads_no_order_and_no_meal_from_the_store(side: WriteSide) -> None:
    """Whether an order is new is the fridge's to say; prices come from the price list."""
    world = make_world(side, soup_units=10)
    side.ordering.place("alice", "warm-up", world.fridge_id, {world.soup: 1})
    side.prices.max_age = 3600.0  # the list is fresh for this test: no refresh in between
    loaded: list[type] = []
    get = side.store.repository.get

    def spying_get(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        aggregate = get(aggregate_id, *args, **kwargs)
        loaded.append(type(aggregate))
        return aggregate

    side.store.repository.get = spying_get  # type: ignore[method-assign]
    for n in range(5):
        side.ordering.place("alice", f"key-{n}", world.fridge_id, {world.soup: 1, world.salad: 1})
    side.ordering.place("alice", "key-0", world.fridge_id, {world.soup: 1, world.salad: 1})

    assert Order not in loaded and Meal not in loaded, loaded


def test_a_repriced_meal_applies_once_the_price_list_has_its_event(side: WriteSide) -> None:
    world = make_world(side, soup_units=10)
    before = side.ordering.place("alice", "before", world.fridge_id, {world.soup: 2})
    repriced = side.catalogue.reprice_meal(world.soup, "7.25")

    assert repriced.position is not None
    assert side.prices.refresh() >= repriced.position
    after = side.ordering.place("alice", "after", world.fridge_id, {world.soup: 2})

    assert after.total == Decimal("14.50")
    # The order placed before keeps the price it was placed at, in its order too.
    assert before.total == Decimal("13.00")
    opened = side.ordering.ensure_order(before.order_id, world.fridge_id)
    assert [line["unit_price"] for line in opened.lines] == [Decimal("6.50")]


def test_a_meal_registered_elsewhere_a_moment_ago_is_priced(
    side: WriteSide, store_settings: Settings
) -> None:
    side.prices.refresh()
    elsewhere = build_write_side(store_settings, clock=FakeClock())
    try:
        elsewhere.catalogue.register_meal("stew-1", "Stew", "9.00", "EUR")
    finally:
        elsewhere.close()

    priced, currency = side.prices.price({"stew-1": 2})

    assert (priced[0]["unit_price"], currency) == (Decimal("9.00"), "EUR")
    with pytest.raises(NotFound):
        side.prices.price({"no-such-meal": 1})


def test_a_repeat_of_an_order_settled_before_it_was_opened_says_how_it_ended(
    side: WriteSide, clock: FakeClock
) -> None:
    """The fridge let the reservation go (its deadline passed) before fulfilment opened the
    order: a repeat says so, and nothing opens an order whose meals are no longer held."""
    world = make_world(side, soup_units=2, salad_units=0)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    clock.advance(minutes=11)
    assert side.stock.expire_reservations(world.fridge_id).value == [placed.order_id]

    again = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})

    assert (again.order_id, again.status, again.created) == (placed.order_id, "expired", False)
    with pytest.raises(NotFound):
        side.ordering.ensure_order(placed.order_id, world.fridge_id)
