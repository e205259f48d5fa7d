"""The order: a state machine from placed to picked up, or to one of its unhappy ends.

placed -> paid -> ready_for_pickup -> picked_up
placed -> cancelled | payment_failed | expired
paid, ready_for_pickup -> refunded (meals missing, or the customer cancelled before pickup)
ready_for_pickup -> not_collected (the pickup window closed)
picked_up, not_collected -> refunded (an operator gives captured money back)
Repeating a transition the order has already made (or gone past) changes nothing, because
the fulfilment flow delivers its commands at least once.

"Paid" means the processor authorised (holds) the money. What became of that money is the
order's payment trail, recorded after the processor did it: captured (picked up, or not
collected under the `charge` policy), voided (the authorisation will never be captured) or
refunded (captured money given back). Each is recorded once; the processor is asked with an
idempotency key of the order id and the step, so a step repeated after a crash moves nothing.
An authorisation that arrives after the order ended is recorded (`AuthorisedTooLate`) so the
fulfilment flow voids it: it is never refused.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict
from uuid import UUID
from zoneinfo import ZoneInfo

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
    NOT_COLLECTED = "not_collected"


class NoShowPolicy(StrEnum):
    """What happens to the held money of an order nobody collected."""

    RELEASE = "release"  # void the authorisation: the customer pays nothing
    CHARGE = "charge"  # capture it: the meals were kept for them


ENDED_UNPAID = frozenset({OrderStatus.CANCELLED, OrderStatus.PAYMENT_FAILED, OrderStatus.EXPIRED})

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
    "refund": (
        PAID_NOT_COLLECTED | {OrderStatus.PICKED_UP, OrderStatus.NOT_COLLECTED},
        OrderStatus.REFUNDED,
    ),
    "not collect": (frozenset({OrderStatus.READY_FOR_PICKUP}), OrderStatus.NOT_COLLECTED),
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


def pickup_deadline(
    ready_at: datetime, window: timedelta, last_fresh_day: date | None, timezone: str
) -> datetime:
    """When a ready order's pickup window closes: `window` after it was made ready, but never
    past the end of the local day (at the fridge) on which its meals' best-before ends."""
    deadline = aware(ready_at) + window
    if last_fresh_day is None:
        return deadline
    end_of_day = datetime.combine(last_fresh_day + timedelta(days=1), time(), ZoneInfo(timezone))
    return min(deadline, end_of_day.astimezone(deadline.tzinfo))


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
        message_id: str = ""  # the processor's webhook id, when it came by webhook

    class ReadyForPickup(Aggregate.Event):
        pickup_by: datetime | None = None  # None: made ready before pickup windows existed

    class PickedUp(Aggregate.Event):
        at: datetime

    class Cancelled(Aggregate.Event):
        reason: str

    class PaymentFailed(Aggregate.Event):
        reason: str
        message_id: str = ""

    class Expired(Aggregate.Event):
        reason: str = "no payment by the deadline"

    class Refunded(Aggregate.Event):
        reason: str

    class NotCollected(Aggregate.Event):
        reason: str
        policy: str  # a NoShowPolicy: decided when the window closed, so a replay agrees

    class AuthorisedTooLate(Aggregate.Event):
        """The processor authorised after the order had ended: the money must be voided."""

        payment_ref: str
        message_id: str = ""

    class PaymentCaptured(Aggregate.Event):
        amount: Decimal

    class PaymentVoided(Aggregate.Event):
        reason: str

    class PaymentRefunded(Aggregate.Event):
        amount: Decimal
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
        self.pickup_by: datetime | None = None
        self.no_show_policy: NoShowPolicy | None = None
        self.captured = False
        self.voided = False
        self.money_refunded = False
        self.messages: set[str] = set()  # processor webhook ids already taken in

    def has_seen(self, message_id: str) -> bool:
        """Whether the processor's message (a webhook id) was taken in already."""
        return bool(message_id) and message_id in self.messages

    def meal_lines(self) -> dict[str, int]:
        return {line["meal_id"]: line["quantity"] for line in self.lines}

    def pay(self, payment_ref: str, message_id: str = "") -> bool:
        """The processor authorised the payment. After the order ended unpaid, the
        authorisation is recorded as too late, for the flow to void it."""
        if self.status in ENDED_UNPAID:
            if self.payment_ref is not None:
                return False
            self._authorised_too_late(payment_ref=payment_ref, message_id=message_id)
            return True
        if not self._may("pay"):
            return False
        self._paid(payment_ref=payment_ref, message_id=message_id)
        return True

    def make_ready(self, pickup_by: datetime | None = None) -> bool:
        """The reservation is confirmed: the customer may collect, until `pickup_by`."""
        if not self._may("make ready"):
            return False
        self._ready(pickup_by=None if pickup_by is None else aware(pickup_by))
        return True

    def not_collected(self, now: datetime, policy: NoShowPolicy) -> bool:
        """The pickup window closed with the meals still in the fridge."""
        if self.status == OrderStatus.READY_FOR_PICKUP and (
            self.pickup_by is None or aware(now) < self.pickup_by
        ):
            raise IllegalTransition(self.order_id, self.status, "close before its pickup window")
        if not self._may("not collect"):
            return False
        self._not_collected(reason="not collected in the pickup window", policy=policy.value)
        return True

    # ---- what became of the money, recorded after the processor did it ---------------------

    def money_to_capture(self) -> bool:
        """Whether held money is due to be taken: picked up, or kept under `charge`."""
        charged = (
            self.status == OrderStatus.NOT_COLLECTED and self.no_show_policy == NoShowPolicy.CHARGE
        )
        return (
            self.payment_ref is not None
            and not self.captured
            and not self.voided
            and (self.status == OrderStatus.PICKED_UP or charged)
        )

    def money_to_void(self) -> bool:
        """Whether a held authorisation will never be captured."""
        released = (
            self.status == OrderStatus.NOT_COLLECTED and self.no_show_policy == NoShowPolicy.RELEASE
        )
        return (
            self.payment_ref is not None
            and not self.captured
            and not self.voided
            and (self.status in ENDED_UNPAID | {OrderStatus.REFUNDED} or released)
        )

    def money_to_refund(self) -> bool:
        """Whether captured money is due back (refunded after it was taken)."""
        return self.status == OrderStatus.REFUNDED and self.captured and not self.money_refunded

    def record_capture(self) -> bool:
        if not self.money_to_capture():
            return False
        self._captured(amount=self.total)
        return True

    def record_void(self, reason: str) -> bool:
        if not self.money_to_void():
            return False
        self._voided(reason=reason)
        return True

    def record_refund(self, reason: str) -> bool:
        if not self.money_to_refund():
            return False
        self._money_refunded(amount=self.total, reason=reason)
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

    def fail_payment(self, reason: str, message_id: str = "") -> bool:
        if not self._may("fail payment"):
            return False
        self._payment_failed(reason=reason, message_id=message_id)
        return True

    def expire(self, now: datetime) -> bool:
        """No payment arrived by the deadline."""
        if self.status == OrderStatus.PLACED and aware(now) < self.payment_due_by:
            raise IllegalTransition(self.order_id, self.status, "expire before its deadline")
        if not self._may("expire"):
            return False
        self._expired(reason="no payment by the deadline")
        return True

    def refund(self, reason: str) -> bool:
        """Give the money back: held money of a paid order that cannot be fulfilled or was
        given up (voided), or captured money after pickup (refunded). Nothing captured after
        pickup or a no-show means nothing to refund."""
        if self.status in {OrderStatus.PICKED_UP, OrderStatus.NOT_COLLECTED} and not (
            self.captured
        ):
            raise IllegalTransition(self.order_id, self.status, "refund")  # nothing captured
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
    def _paid(self, payment_ref: str, message_id: str = "") -> None:
        self.status = OrderStatus.PAID
        self.payment_ref = payment_ref
        if message_id:
            self.messages.add(message_id)

    @event(AuthorisedTooLate)
    def _authorised_too_late(self, payment_ref: str, message_id: str) -> None:
        self.payment_ref = payment_ref
        if message_id:
            self.messages.add(message_id)

    @event(ReadyForPickup)
    def _ready(self, pickup_by: datetime | None = None) -> None:
        self.status = OrderStatus.READY_FOR_PICKUP
        self.pickup_by = pickup_by

    @event(NotCollected)
    def _not_collected(self, reason: str, policy: str) -> None:
        self.status = OrderStatus.NOT_COLLECTED
        self.no_show_policy = NoShowPolicy(policy)

    @event(PaymentCaptured)
    def _captured(self, amount: Decimal) -> None:
        self.captured = True

    @event(PaymentVoided)
    def _voided(self, reason: str) -> None:
        self.voided = True

    @event(PaymentRefunded)
    def _money_refunded(self, amount: Decimal, reason: str) -> None:
        self.money_refunded = True

    @event(PickedUp)
    def _picked_up(self, at: datetime) -> None:
        self.status = OrderStatus.PICKED_UP

    @event(Cancelled)
    def _cancelled(self, reason: str) -> None:
        self.status = OrderStatus.CANCELLED

    @event(PaymentFailed)
    def _payment_failed(self, reason: str, message_id: str = "") -> None:
        self.status = OrderStatus.PAYMENT_FAILED
        if message_id:
            self.messages.add(message_id)

    @event(Expired)
    def _expired(self, reason: str = "no payment by the deadline") -> None:
        self.status = OrderStatus.EXPIRED

    @event(Refunded)
    def _refunded(self, reason: str) -> None:
        self.status = OrderStatus.REFUNDED
