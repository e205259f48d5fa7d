"""The order: a state machine from placed to picked up, or to one of its unhappy ends.

placed -> paid -> ready_for_pickup -> picked_up
placed -> cancelled | payment_failed | expired
paid, ready_for_pickup -> refunded (meals missing, or the customer cancelled before pickup)
Repeating a transition the order has already made (or gone past) changes nothing, because
the fulfilment flow delivers its commands at least once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition
from domain.values import aware


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    READY_FOR_PICKUP = "ready_for_pickup"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"


HAPPY_PATH = [
    OrderStatus.PLACED,
    OrderStatus.PAID,
    OrderStatus.READY_FOR_PICKUP,
    OrderStatus.PICKED_UP,
]

PAID_NOT_COLLECTED = frozenset({OrderStatus.PAID, OrderStatus.READY_FOR_PICKUP})

# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[OrderStatus], OrderStatus]] = {
    "pay": (frozenset({OrderStatus.PLACED}), OrderStatus.PAID),
    "make ready": (frozenset({OrderStatus.PAID}), OrderStatus.READY_FOR_PICKUP),
    "pick up": (frozenset({OrderStatus.READY_FOR_PICKUP}), OrderStatus.PICKED_UP),
    "cancel": (frozenset({OrderStatus.PLACED}), OrderStatus.CANCELLED),
    "fail payment": (frozenset({OrderStatus.PLACED}), OrderStatus.PAYMENT_FAILED),
    "expire": (frozenset({OrderStatus.PLACED}), OrderStatus.EXPIRED),
    "refund": (PAID_NOT_COLLECTED, OrderStatus.REFUNDED),
}


class OrderLine(TypedDict):
    meal_id: str
    quantity: int
    unit_price: Decimal


class OrderTerms(TypedDict):
    """What a customer was promised when the fridge reserved their meals: the order's birth.

    The fridge's reservation event carries these; the `Order` is created from them.
    """

    customer_id: str
    lines: list[OrderLine]
    total: Decimal
    currency: str
    fingerprint: str  # of the request (fridge and lines): a repeat is told from a reused key


def priced(lines: list[OrderLine]) -> Decimal:
    """An order's total: the sum of its lines at the prices charged."""
    return sum((line["unit_price"] * line["quantity"] for line in lines), Decimal("0.00"))


class Order(Aggregate):
    INITIAL_VERSION = 0

    # ---- its events: what projections and the fulfilment flow match on ----------------------

    class Placed(Aggregate.Created):
        order_id: str
        customer_id: str
        fridge_id: str
        venue_id: str
        city_id: str
        lines: list[OrderLine]
        total: Decimal
        currency: str
        placed_at: datetime
        payment_due_by: datetime
        request_fingerprint: str

    class PaymentAuthorised(Aggregate.Event):
        payment_ref: str

    class ReadyForPickup(Aggregate.Event):
        pass

    class PickedUp(Aggregate.Event):
        at: datetime

    class Cancelled(Aggregate.Event):
        reason: str

    class PaymentFailed(Aggregate.Event):
        reason: str

    class Expired(Aggregate.Event):
        pass

    class Refunded(Aggregate.Event):
        reason: str

    @staticmethod
    def create_id(order_id: str) -> UUID:
        return UUID(order_id)

    @event(Placed)
    def __init__(
        self,
        order_id: str,
        customer_id: str,
        fridge_id: str,
        venue_id: str,
        city_id: str,
        lines: list[OrderLine],
        total: Decimal,
        currency: str,
        placed_at: datetime,
        payment_due_by: datetime,
        request_fingerprint: str,
    ) -> None:
        self.order_id = order_id
        self.customer_id = customer_id
        self.fridge_id = fridge_id
        self.venue_id = venue_id
        self.city_id = city_id
        self.lines = lines
        self.total = total
        self.currency = currency
        self.placed_at = placed_at
        self.payment_due_by = payment_due_by
        self.request_fingerprint = request_fingerprint
        self.status = OrderStatus.PLACED
        self.payment_ref: str | None = None

    def meal_lines(self) -> dict[str, int]:
        return {line["meal_id"]: line["quantity"] for line in self.lines}

    def pay(self, payment_ref: str) -> bool:
        """The processor authorised the payment."""
        if not self._may("pay"):
            return False
        self._paid(payment_ref=payment_ref)
        return True

    def make_ready(self) -> bool:
        """The reservation is confirmed: the customer may collect."""
        if not self._may("make ready"):
            return False
        self._ready()
        return True

    def pick_up(self, at: datetime) -> bool:
        if not self._may("pick up"):
            return False
        self._picked_up(at=aware(at))
        return True

    def cancel(self, reason: str) -> bool:
        """The customer gives the order up before pickup: unpaid, it is cancelled; paid, the
        money goes back (refunded). An order already given up either way changes nothing."""
        if self.status in PAID_NOT_COLLECTED or self.status == OrderStatus.REFUNDED:
            return self.refund(f"cancelled: {reason}")
        if not self._may("cancel"):
            return False
        self._cancelled(reason=reason)
        return True

    def fail_payment(self, reason: str) -> bool:
        if not self._may("fail payment"):
            return False
        self._payment_failed(reason=reason)
        return True

    def expire(self, now: datetime) -> bool:
        """No payment arrived by the deadline."""
        if self.status == OrderStatus.PLACED and aware(now) < self.payment_due_by:
            raise IllegalTransition(self.order_id, self.status, "expire before its deadline")
        if not self._may("expire"):
            return False
        self._expired()
        return True

    def refund(self, reason: str) -> bool:
        """A paid order cannot be fulfilled (its meals went missing) or was given up."""
        if not self._may("refund"):
            return False
        self._refunded(reason=reason)
        return True

    def _may(self, action: str) -> bool:
        """True if the action moves the order on; False if it already happened; else raise."""
        sources, target = TRANSITIONS[action]
        status = OrderStatus(self.status)
        if status == target or (
            target in HAPPY_PATH
            and status in HAPPY_PATH
            and HAPPY_PATH.index(status) > HAPPY_PATH.index(target)
        ):
            return False
        if status not in sources:
            raise IllegalTransition(self.order_id, status, action)
        return True

    @event(PaymentAuthorised)
    def _paid(self, payment_ref: str) -> None:
        self.status = OrderStatus.PAID
        self.payment_ref = payment_ref

    @event(ReadyForPickup)
    def _ready(self) -> None:
        self.status = OrderStatus.READY_FOR_PICKUP

    @event(PickedUp)
    def _picked_up(self, at: datetime) -> None:
        self.status = OrderStatus.PICKED_UP

    @event(Cancelled)
    def _cancelled(self, reason: str) -> None:
        self.status = OrderStatus.CANCELLED

    @event(PaymentFailed)
    def _payment_failed(self, reason: str) -> None:
        self.status = OrderStatus.PAYMENT_FAILED

    @event(Expired)
    def _expired(self) -> None:
        self.status = OrderStatus.EXPIRED

    @event(Refunded)
    def _refunded(self, reason: str) -> None:
        self.status = OrderStatus.REFUNDED
