"""The order's state machine, one given/when/then per rule. Fixed aware datetimes, no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain.errors import IllegalTransition, InvalidRequest
from domain.order import Order, OrderLine, OrderStatus
from domain.values import PAYMENT_WINDOW, order_id_for

PLACED_AT = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
DUE_BY = PLACED_AT + PAYMENT_WINDOW
NAIVE = datetime(2025, 6, 1, 10, 0)  # deliberately naive
ORDER_ID = order_id_for("customer-1", "key-1")


# ---- given ---------------------------------------------------------------------------------


def placed() -> Order:
    order = new_order()
    order.collect_events()
    return order


def new_order() -> Order:
    return Order(
        order_id=ORDER_ID,
        customer_id="customer-1",
        fridge_id="gym-1",
        venue_id="kreuzberg-gym",
        city_id="berlin",
        lines=[
            OrderLine(meal_id="soup", quantity=2, unit_price=Decimal("4.50")),
            OrderLine(meal_id="salad", quantity=1, unit_price=Decimal("6.00")),
        ],
        total=Decimal("15.00"),
        currency="EUR",
        placed_at=PLACED_AT,
        payment_due_by=DUE_BY,
        request_fingerprint="f" * 64,
    )


def in_status(status: OrderStatus) -> Order:
    """An order walked to `status` by its own commands."""
    order = placed()
    steps: dict[OrderStatus, list[Callable[[Order], bool]]] = {
        OrderStatus.PLACED: [],
        OrderStatus.PAID: [lambda o: o.pay("pay-1")],
        OrderStatus.READY_FOR_PICKUP: [lambda o: o.pay("pay-1"), Order.make_ready],
        OrderStatus.PICKED_UP: [
            lambda o: o.pay("pay-1"),
            Order.make_ready,
            lambda o: o.pick_up(DUE_BY),
        ],
        OrderStatus.CANCELLED: [lambda o: o.cancel("changed my mind")],
        OrderStatus.PAYMENT_FAILED: [lambda o: o.fail_payment("card declined")],
        OrderStatus.EXPIRED: [lambda o: o.expire(DUE_BY)],
        OrderStatus.REFUNDED: [lambda o: o.pay("pay-1"), lambda o: o.refund("meals missing")],
    }
    for step in steps[status]:
        assert step(order)
    assert order.status == status
    order.collect_events()
    return order


ACTIONS: dict[str, Callable[[Order], bool]] = {
    "pay": lambda o: o.pay("pay-2"),
    "make ready": Order.make_ready,
    "pick up": lambda o: o.pick_up(DUE_BY),
    "cancel": lambda o: o.cancel("again"),
    "fail payment": lambda o: o.fail_payment("again"),
    "expire": lambda o: o.expire(DUE_BY),
    "refund": lambda o: o.refund("again"),
}


# ---- then ----------------------------------------------------------------------------------


def names(order: Order) -> list[str]:
    return [type(e).__name__ for e in order.pending_events]


# ---- placing -------------------------------------------------------------------------------


def test_placing_an_order_records_placed_at_version_0() -> None:
    order = Order(
        order_id=ORDER_ID,
        customer_id="customer-1",
        fridge_id="gym-1",
        venue_id="v",
        city_id="berlin",
        lines=[OrderLine(meal_id="soup", quantity=2, unit_price=Decimal("4.50"))],
        total=Decimal("9.00"),
        currency="EUR",
        placed_at=PLACED_AT,
        payment_due_by=DUE_BY,
        request_fingerprint="f",
    )

    assert names(order) == ["Placed"]
    assert order.version == 0
    assert order.id == UUID(ORDER_ID)
    assert order.status == OrderStatus.PLACED
    assert order.payment_ref is None


def test_order_ids_derive_from_the_customer_and_their_key() -> None:
    assert order_id_for("customer-1", "key-1") == ORDER_ID
    assert order_id_for("customer-2", "key-1") != ORDER_ID
    assert order_id_for("customer-1", "key-2") != ORDER_ID


@pytest.mark.parametrize(("customer", "key"), [("", "k"), ("c", ""), ("c", "k" * 201)])
def test_order_ids_need_a_customer_and_a_sensible_key(customer: str, key: str) -> None:
    with pytest.raises(InvalidRequest):
        order_id_for(customer, key)


def test_an_order_knows_its_meal_lines() -> None:
    assert placed().meal_lines() == {"soup": 2, "salad": 1}


# ---- the happy path ------------------------------------------------------------------------


def test_paying_records_the_payment_reference() -> None:
    order = placed()

    assert order.pay("pay-1") is True

    assert names(order) == ["PaymentAuthorised"]
    assert order.pending_events[0].payment_ref == "pay-1"
    assert (order.status, order.payment_ref) == (OrderStatus.PAID, "pay-1")


def test_a_paid_order_is_made_ready_for_pickup() -> None:
    order = in_status(OrderStatus.PAID)

    assert order.make_ready() is True

    assert names(order) == ["ReadyForPickup"]
    assert order.status == OrderStatus.READY_FOR_PICKUP


def test_a_ready_order_is_picked_up() -> None:
    order = in_status(OrderStatus.READY_FOR_PICKUP)
    at = DUE_BY + timedelta(minutes=5)

    assert order.pick_up(at) is True

    assert names(order) == ["PickedUp"]
    assert order.pending_events[0].at == at
    assert order.status == OrderStatus.PICKED_UP


def test_picking_up_with_a_naive_time_is_refused() -> None:
    order = in_status(OrderStatus.READY_FOR_PICKUP)

    with pytest.raises(InvalidRequest):
        order.pick_up(NAIVE)

    assert names(order) == []
    assert order.status == OrderStatus.READY_FOR_PICKUP


# ---- repeats and transitions already gone past are no-ops ---------------------------------


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (OrderStatus.PAID, "pay"),
        (OrderStatus.READY_FOR_PICKUP, "pay"),
        (OrderStatus.PICKED_UP, "pay"),
        (OrderStatus.READY_FOR_PICKUP, "make ready"),
        (OrderStatus.PICKED_UP, "make ready"),
        (OrderStatus.PICKED_UP, "pick up"),
        (OrderStatus.CANCELLED, "cancel"),
        (OrderStatus.PAYMENT_FAILED, "fail payment"),
        (OrderStatus.EXPIRED, "expire"),
        (OrderStatus.REFUNDED, "refund"),
        (OrderStatus.REFUNDED, "cancel"),
    ],
)
def test_a_transition_already_made_or_gone_past_changes_nothing(
    status: OrderStatus, action: str
) -> None:
    order = in_status(status)

    assert ACTIONS[action](order) is False

    assert names(order) == []
    assert order.status == status


def test_a_repeated_payment_keeps_the_first_reference() -> None:
    order = in_status(OrderStatus.PAID)

    order.pay("pay-2")

    assert order.payment_ref == "pay-1"


# ---- the unhappy ends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "event"),
    [
        ("cancel", OrderStatus.CANCELLED, "Cancelled"),
        ("fail payment", OrderStatus.PAYMENT_FAILED, "PaymentFailed"),
        ("expire", OrderStatus.EXPIRED, "Expired"),
    ],
)
def test_a_placed_order_can_end_unpaid(action: str, status: OrderStatus, event: str) -> None:
    order = placed()

    assert ACTIONS[action](order) is True

    assert names(order) == [event]
    assert order.status == status


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.READY_FOR_PICKUP])
def test_a_paid_order_can_be_refunded(status: OrderStatus) -> None:
    order = in_status(status)

    assert order.refund("meals missing") is True

    assert names(order) == ["Refunded"]
    assert order.pending_events[0].reason == "meals missing"
    assert order.status == OrderStatus.REFUNDED


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.READY_FOR_PICKUP])
def test_a_paid_order_cancelled_before_pickup_is_refunded(status: OrderStatus) -> None:
    order = in_status(status)

    assert order.cancel("changed my mind") is True

    assert names(order) == ["Refunded"]
    assert order.pending_events[0].reason == "cancelled: changed my mind"
    assert order.status == OrderStatus.REFUNDED


def test_expiring_before_the_payment_deadline_is_refused() -> None:
    order = placed()

    with pytest.raises(IllegalTransition) as refused:
        order.expire(DUE_BY - timedelta(seconds=1))

    assert refused.value.status == OrderStatus.PLACED
    assert names(order) == []
    assert order.status == OrderStatus.PLACED


def test_expiring_at_the_payment_deadline_is_allowed() -> None:
    order = placed()

    assert order.expire(DUE_BY) is True

    assert names(order) == ["Expired"]


def test_expiring_with_a_naive_time_is_refused() -> None:
    order = placed()

    with pytest.raises(InvalidRequest):
        order.expire(NAIVE)

    assert names(order) == []


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (OrderStatus.PLACED, "make ready"),
        (OrderStatus.PLACED, "pick up"),
        (OrderStatus.PLACED, "refund"),
        (OrderStatus.PAID, "pick up"),
        (OrderStatus.PAID, "fail payment"),
        (OrderStatus.PAID, "expire"),
        (OrderStatus.PICKED_UP, "refund"),
        (OrderStatus.PICKED_UP, "cancel"),
        (OrderStatus.CANCELLED, "fail payment"),
        (OrderStatus.EXPIRED, "cancel"),
        (OrderStatus.REFUNDED, "pay"),
        (OrderStatus.REFUNDED, "make ready"),
        (OrderStatus.REFUNDED, "pick up"),
    ],
)
def test_an_illegal_transition_is_refused(status: OrderStatus, action: str) -> None:
    order = in_status(status)

    with pytest.raises(IllegalTransition) as refused:
        ACTIONS[action](order)

    assert (refused.value.order_id, refused.value.status, refused.value.action) == (
        ORDER_ID,
        status,
        action,
    )
    assert names(order) == []
    assert order.status == status


def test_replaying_an_orders_events_rebuilds_it() -> None:
    live = new_order()
    live.pay("pay-1")
    live.make_ready()
    live.pick_up(DUE_BY)
    events = live.collect_events()

    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)

    assert rebuilt == live
    assert isinstance(rebuilt, Order)
    assert (rebuilt.status, rebuilt.payment_ref, rebuilt.version) == (
        OrderStatus.PICKED_UP,
        "pay-1",
        3,
    )
