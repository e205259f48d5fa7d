"""A paid order's cancel and its pickup, in every order their steps can run, with either
process dying half-way: the order always ends one way, and the way its fridge says.

Each is two appends, the fridge's first (`Fridge.cancel` / `Fridge.pick_up`), then the
order's (`Order.cancel` / `Order.pick_up`), as application/orders.py runs them. A step the
aggregates refuse ends that caller; a caller that dies runs nothing more. Afterwards the
fulfilment flow reacts to what the fridge recorded (`react`), as it does after any crash.
Every interleaving and every crash point is tried: six interleavings, three crash cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from application.fulfilment import RecordCancel, RecordPickup, react
from domain.errors import DomainError
from domain.fridge import Fridge
from domain.order import Order, OrderStatus
from tests.unit.test_fulfilment_react import DUE, NOW, ORDER_ID, placed_order, stocked_fridge

LATER = NOW + timedelta(minutes=3)
Step = Callable[[Fridge, Order], object]

PICKUP: list[Step] = [
    lambda fridge, order: fridge.pick_up(ORDER_ID, LATER),
    lambda fridge, order: order.pick_up(LATER),
]
CANCEL: list[Step] = [
    lambda fridge, order: fridge.cancel(ORDER_ID, LATER),
    lambda fridge, order: order.cancel("customer"),
]


def interleavings(first: list[str], second: list[str]) -> Iterator[list[str]]:
    """Every merge of two sequences that keeps each one's own order."""
    if not first or not second:
        yield first + second
        return
    for rest in interleavings(first[1:], second):
        yield [first[0], *rest]
    for rest in interleavings(first, second[1:]):
        yield [second[0], *rest]


SCHEDULES = list(interleavings(["pickup", "pickup"], ["cancel", "cancel"]))


def paid_and_ready() -> tuple[Fridge, Order]:
    fridge = stocked_fridge()
    fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW)
    fridge.confirm(ORDER_ID)
    fridge.collect_events()
    order = placed_order()
    order.pay("psp-1")
    order.make_ready()
    order.collect_events()
    return fridge, order


@pytest.mark.parametrize("schedule", SCHEDULES, ids=["-".join(s) for s in SCHEDULES])
@pytest.mark.parametrize("dies", [None, "pickup", "cancel"])
def test_cancel_and_pickup_never_both_win(schedule: list[str], dies: str | None) -> None:
    fridge, order = paid_and_ready()
    steps = {"pickup": iter(PICKUP), "cancel": iter(CANCEL)}
    done: dict[str, int] = {"pickup": 0, "cancel": 0}
    stopped: set[str] = set()

    for caller in schedule:
        if caller in stopped:
            continue
        step = next(steps[caller])
        try:
            step(fridge, order)
        except DomainError:
            stopped.add(caller)  # refused: the caller is answered 409 and goes no further
            continue
        done[caller] += 1
        if caller == dies and done[caller] == 1:
            stopped.add(caller)  # SIGKILL between the fridge's append and the order's

    for event in fridge.collect_events():  # the fulfilment flow, from the fridge's log
        for reaction in react(event):
            try:
                if isinstance(reaction, RecordPickup):
                    order.pick_up(LATER)
                elif isinstance(reaction, RecordCancel):
                    order.cancel("customer")
            except DomainError:
                pass  # moot: the order went the other way

    at_fridge = fridge.reservation_status(ORDER_ID)
    assert at_fridge in ("picked_up", "cancelled")
    assert (
        order.status
        == {
            "picked_up": OrderStatus.PICKED_UP,
            "cancelled": OrderStatus.REFUNDED,
        }[at_fridge]
    )
    assert fridge.on_hand("soup") == (1 if at_fridge == "picked_up" else 3)
