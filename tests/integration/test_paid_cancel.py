"""A customer may cancel before pickup, paid or not: a paid order is refunded, once (its
authorisation voided: the money was held, never taken).

Given a world on each store and orders paid for; when customers cancel (from a process that
dies half-way, from threads racing the customer's hand at the fridge door); then every order
ends one way only: its meals were taken out and it was charged, or its meals are back on sale
and its money was returned, once.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading

import pytest

from application.fulfilment import Fulfilment
from domain.errors import IllegalTransition, ReservationClosed
from domain.order import OrderStatus
from ops.root import WriteSide
from ops.settings import Settings
from tests.integration.test_fulfilment import (
    ScriptedProcessor,
    available,
    follow,
    fulfilment,
    processor,
)
from tests.integration.world import dying_after_a_fridge_append, make_world

SPAWN = multiprocessing.get_context("spawn")


__all__ = ["fulfilment", "processor"]  # the fixtures, shared with the fulfilment tests


def test_a_paid_order_cancelled_before_pickup_is_refunded_once_and_its_meals_are_back(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    position = follow(side, fulfilment)
    assert side.ordering.order(placed.order_id).status == OrderStatus.READY_FOR_PICKUP
    assert available(side, world) == 0

    cancelled = side.ordering.cancel(placed.order_id, customer_id="alice")

    assert cancelled.status == OrderStatus.REFUNDED
    assert available(side, world) == 2
    follow(side, fulfilment, position)
    assert processor.voided == [placed.order_id]  # held, never taken: voided
    follow(side, fulfilment)  # at least once: everything again from the start
    # Asked again, under the same idempotency key (the order id) and for the same amount:
    # the processor's contract returns the money once.
    assert set(processor.voided) == {placed.order_id}
    # A second cancel is the same request again: it changes nothing.
    assert side.ordering.cancel(placed.order_id, customer_id="alice").status == "refunded"
    assert side.ordering.order(placed.order_id).status == OrderStatus.REFUNDED


def test_an_order_picked_up_cannot_be_cancelled(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 1})
    follow(side, fulfilment)
    side.ordering.pick_up(world.fridge_id, placed.order_id)

    with pytest.raises(ReservationClosed) as refused:
        side.ordering.cancel(placed.order_id, customer_id="alice")

    assert refused.value.outcome == "picked_up"

    follow(side, fulfilment)
    assert side.ordering.order(placed.order_id).status == OrderStatus.PICKED_UP
    assert processor.refunded == []


def _cancel_then_die(settings: Settings, order_id: str) -> None:
    """A process killed the moment the fridge's release is stored, before the order moves."""
    dying_after_a_fridge_append(settings).ordering.cancel(order_id, customer_id="alice")


def test_a_cancel_killed_after_the_fridge_released_is_refunded_by_the_flow(
    side: WriteSide,
    fulfilment: Fulfilment,
    processor: ScriptedProcessor,
    store_settings: Settings,
) -> None:
    world = make_world(side, soup_units=3)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 3})
    position = follow(side, fulfilment)
    crashed = SPAWN.Process(target=_cancel_then_die, args=(store_settings, placed.order_id))
    crashed.start()
    crashed.join(timeout=120)
    assert crashed.exitcode == -signal.SIGKILL
    side.writer.forget(world.fridge_id)
    assert side.ordering.order(placed.order_id).status == OrderStatus.READY_FOR_PICKUP

    follow(side, fulfilment, position)

    assert side.ordering.order(placed.order_id).status == OrderStatus.REFUNDED
    assert processor.voided == [placed.order_id]  # held, never taken: voided
    assert available(side, world) == 3
    with pytest.raises(ReservationClosed):  # the door stays shut: the meals are not hers now
        side.ordering.pick_up(world.fridge_id, placed.order_id)


ORDERS = 6


def test_cancels_racing_pickups_end_each_order_one_way_only(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2 * ORDERS)
    orders = [
        side.ordering.place(f"customer-{n}", f"k{n}", world.fridge_id, {world.soup: 2})
        for n in range(ORDERS)
    ]
    position = follow(side, fulfilment)
    start = threading.Barrier(2 * ORDERS)
    refused: list[tuple[str, str]] = []

    def attempt(kind: str, order_id: str) -> None:
        start.wait()
        try:
            if kind == "cancel":
                side.ordering.cancel(order_id)
            else:
                side.ordering.pick_up(world.fridge_id, order_id)
        except (ReservationClosed, IllegalTransition):
            refused.append((kind, order_id))

    threads = [
        threading.Thread(target=attempt, args=(kind, placed.order_id))
        for placed in orders
        for kind in ("cancel", "pickup")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    follow(side, fulfilment, position)

    statuses = {p.order_id: side.ordering.order(p.order_id).status for p in orders}
    refunded = sorted(o for o, status in statuses.items() if status == OrderStatus.REFUNDED)
    picked = sorted(o for o, status in statuses.items() if status == OrderStatus.PICKED_UP)
    assert sorted(refunded + picked) == sorted(statuses), statuses
    assert len(refused) == ORDERS  # for each order, exactly one of the two was refused
    assert sorted(processor.voided) == refunded
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.held(world.soup) == 0
    assert fridge.on_hand(world.soup) == 2 * ORDERS - 2 * len(picked)
