"""The order's money: authorised at birth, captured at pickup, voided when it will never be
captured, refunded only once captured. Given an order walked by its own commands, when one
command, then the events it records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from application.store import EventStore
from domain.errors import IllegalTransition
from domain.order import NoShowPolicy, Order, OrderStatus
from tests.unit.test_order import DUE_BY, in_status, names, new_order, placed

PICKUP_BY = DUE_BY + timedelta(hours=2)


def ready() -> Order:
    order = placed()
    order.pay("pay-1")
    order.make_ready(PICKUP_BY)
    order.collect_events()
    return order


def test_an_authorisation_after_the_order_ended_is_recorded_for_voiding() -> None:
    order = in_status(OrderStatus.EXPIRED)

    assert order.pay("pay-late", message_id="msg-1") is True
    assert order.pay("pay-late", message_id="msg-2") is False  # once is enough

    assert names(order) == ["AuthorisedTooLate"]
    assert order.status == OrderStatus.EXPIRED
    assert order.money_to_void() and not order.money_to_capture()
    assert order.has_seen("msg-1") and not order.has_seen("msg-2")


def test_a_pickup_makes_the_held_money_due_for_capture_once() -> None:
    order = ready()
    order.pick_up(PICKUP_BY)

    assert order.money_to_capture() and not order.money_to_void()
    assert order.record_capture() is True
    assert order.record_capture() is False

    assert names(order) == ["PickedUp", "PaymentCaptured"]


def test_a_cancel_after_authorisation_voids_and_never_refunds() -> None:
    order = ready()
    order.cancel("changed my mind")

    assert order.status == OrderStatus.REFUNDED
    assert order.money_to_void() and not order.money_to_refund()
    assert order.record_void("cancelled") is True
    assert order.record_void("cancelled") is False
    assert not order.record_capture()


def test_the_pickup_window_closes_only_at_its_end() -> None:
    order = ready()

    with pytest.raises(IllegalTransition):
        order.not_collected(PICKUP_BY - timedelta(seconds=1), NoShowPolicy.RELEASE)

    assert order.not_collected(PICKUP_BY, NoShowPolicy.RELEASE) is True
    assert order.not_collected(PICKUP_BY, NoShowPolicy.RELEASE) is False
    assert names(order) == ["NotCollected"]
    assert order.status == OrderStatus.NOT_COLLECTED


@pytest.mark.parametrize(
    ("policy", "capture", "void"),
    [(NoShowPolicy.RELEASE, False, True), (NoShowPolicy.CHARGE, True, False)],
)
def test_a_no_show_voids_or_charges_by_the_policy_in_force_then(
    policy: NoShowPolicy, capture: bool, void: bool
) -> None:
    order = ready()
    order.not_collected(PICKUP_BY, policy)

    assert (order.money_to_capture(), order.money_to_void()) == (capture, void)


def test_only_captured_money_is_refunded() -> None:
    order = ready()
    order.pick_up(PICKUP_BY)

    with pytest.raises(IllegalTransition):
        order.refund("not captured yet")

    order.record_capture()
    assert order.refund("complaint: soup was cold") is True
    assert order.money_to_refund() and not order.money_to_void()
    assert order.record_refund("complaint") is True
    assert order.record_refund("complaint") is False
    assert names(order) == ["PickedUp", "PaymentCaptured", "Refunded", "PaymentRefunded"]
    assert [e.amount for e in order.pending_events if isinstance(e, Order.PaymentRefunded)] == [
        Decimal("15.00")
    ]


def test_an_order_that_never_held_money_has_nothing_to_void() -> None:
    order = in_status(OrderStatus.CANCELLED)

    assert not order.money_to_void()
    assert order.record_void("cancelled") is False


def test_order_events_stored_before_money_was_made_real_still_replay() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    order = placed_order_with_history()
    stored = [store.mapper.to_stored_event(e) for e in order.collect_events()]
    old = []
    for event in stored:  # as the store held them: no pickup deadline, no reason, no ids
        state = json.loads(event.state)
        for name in ("pickup_by", "message_id"):
            state.pop(name, None)
        if event.topic.endswith("Order.Expired"):
            state.pop("reason", None)
        old.append(replace(event, state=json.dumps(state).encode()))

    replayed = None
    for event in (store.mapper.to_domain_event(s) for s in old):
        replayed = event.mutate(replayed)  # type: ignore[attr-defined]

    assert isinstance(replayed, Order)
    assert (replayed.status, replayed.pickup_by, replayed.payment_ref) == (
        OrderStatus.READY_FOR_PICKUP,
        None,
        "pay-1",
    )


def placed_order_with_history() -> Order:
    order = new_order()
    order.pay("pay-1", message_id="msg-1")
    order.make_ready(PICKUP_BY)
    return order


def test_an_expiry_stored_without_its_reason_replays_with_the_default() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    order = new_order()
    order.expire(DUE_BY)
    stored = [store.mapper.to_stored_event(e) for e in order.collect_events()]
    state = json.loads(stored[-1].state)
    del state["reason"]
    stored[-1] = replace(stored[-1], state=json.dumps(state).encode())
    replayed = None
    for event in (store.mapper.to_domain_event(s) for s in stored):
        replayed = event.mutate(replayed)  # type: ignore[attr-defined]
    assert isinstance(replayed, Order) and replayed.status == OrderStatus.EXPIRED
    assert stored[-1].topic.endswith("Order.Expired")
