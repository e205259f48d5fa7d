"""Ordering: place an order (the fridge's reservation is its birth) and move it on.

Placing appends once, to the fridge: the reservation event carries everything the order
needs (customer, priced lines, total, currency, payment deadline, the request's
fingerprint). The fulfilment flow then creates the `Order` from that event (`open_order`),
idempotently, and every later step appends to one aggregate and is idempotent on the order
id, so the flow can repeat any of them after a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, ProgrammingError

from application.catalogue import Catalogue
from application.causes import stamp
from application.clock import Clock
from application.errors import NotFound, NotYourOrder
from application.fridge_writer import FridgeWriter
from application.prices import PriceList
from application.retry import on_conflict_retry
from application.store import EventStore
from domain.causes import Cause, cause_of
from domain.errors import InvalidRequest, ReservationClosed
from domain.fridge import Fridge, Promised
from domain.order import (
    NoShowPolicy,
    Order,
    OrderLine,
    OrderStatus,
    OrderTerms,
    pickup_deadline,
    priced,
)
from domain.values import PAYMENT_WINDOW, ReleaseReason, meal_lines, natural_id, order_id_for

PICKUP_WINDOW = timedelta(hours=2)
"""How long a ready order waits to be collected (FARMACY_PICKUP_WINDOW), at most."""


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    status: str
    fridge_id: str
    venue_id: str
    lines: list[OrderLine]
    total: Decimal
    currency: str
    payment_due_by: datetime
    position: int | None
    created: bool  # False: the same request was placed before and this is its order


@dataclass(frozen=True)
class OrderMoved:
    order_id: str
    status: str
    position: int | None


@dataclass(frozen=True)
class Reserved:
    """What a fridge's reservation says of its order (from the reservation event)."""

    order_id: str
    fridge_stream: UUID  # fridge events name their fridge by its stream id
    terms: OrderTerms
    placed_at: datetime
    payment_due_by: datetime


def fingerprint(fridge_id: str, lines: Mapping[str, int]) -> str:
    body = json.dumps({"fridge_id": fridge_id, "lines": sorted(lines.items())})
    return hashlib.sha256(body.encode()).hexdigest()


class Ordering:
    def __init__(
        self,
        store: EventStore,
        writer: FridgeWriter,
        catalogue: Catalogue,
        clock: Clock,
        prices: PriceList | None = None,
        *,
        payment_window: timedelta = PAYMENT_WINDOW,
        pickup_window: timedelta = PICKUP_WINDOW,
    ) -> None:
        self.payment_window = payment_window
        self.pickup_window = pickup_window
        self.store = store
        self.writer = writer
        self.catalogue = catalogue
        self.clock = clock
        self.prices = prices or PriceList(store)
        self._fridges: dict[UUID, tuple[str, str, str]] = {}  # fridge, venue, city: fixed

    def place(
        self, customer_id: str, idempotency_key: str, fridge_id: str, lines: Mapping[str, int]
    ) -> PlacedOrder:
        """Reserve the meals on the fridge, in one append that is the order's birth.

        SoldOut (409) if they don't fit. The fridge decides repeats inside its turn: the same
        key and lines are the same order (created False), the same key with other lines is
        IdempotencyKeyReused and reserves nothing.
        """
        natural_id("fridge_id", fridge_id)
        checked = meal_lines(lines)
        order_id = order_id_for(customer_id, idempotency_key)
        now = self.clock()
        # the price in force at this fridge now, promotions included; the order keeps it
        priced_lines, currency = self.prices.price(checked, fridge_id, now)
        terms = OrderTerms(
            customer_id=customer_id,
            lines=priced_lines,
            total=priced(priced_lines),
            currency=currency,
            fingerprint=fingerprint(fridge_id, checked),
        )
        due = now + self.payment_window
        reserved = self.writer.execute(
            fridge_id,
            lambda fridge: (
                fridge.reserve(order_id, checked, due, now, terms),
                fridge.venue_id,
                fridge.promised(order_id),
            ),
        )
        created, venue_id, promised = reserved.value
        if created:
            return _as_promised(
                order_id, fridge_id, venue_id, terms, due, OrderStatus.PLACED, reserved.position
            )
        return self._repeat(order_id, fridge_id, venue_id, promised, reserved.position)

    def open_order(self, reserved: Reserved) -> Order:
        """Create the `Order` from its reservation event: once, however often it is asked.

        The append is the check: a second open conflicts on the order's first version."""
        order = self._order_from(reserved)
        try:
            self.store.append(order)
        except IntegrityError:  # opened meanwhile by another step or process: theirs stands
            return self.order(reserved.order_id)
        return order

    def open_orders(
        self, reservations: Sequence[Reserved], causes: Mapping[str, Cause] | None = None
    ) -> bool:
        """Create the orders of several reservations in one append (the fulfilment flow opens
        a batch's at once: one commit instead of one each), each order's event carrying its
        own cause (by order id) where one is given. False, and nothing appended, if any of
        them was opened already, or if the store appends to one stream at a time (KurrentDB
        refuses before it writes): then open each with `open_order`."""
        orders = [self._order_from(reserved) for reserved in reservations]
        for order in orders:
            stamp(order.pending_events, (causes or {}).get(order.order_id))
        try:
            self.store.save(*orders)
        except (IntegrityError, ProgrammingError):
            return False
        return True

    def _order_from(self, reserved: Reserved) -> Order:
        fridge_id, venue_id, city_id = self.fridge_of(reserved.fridge_stream)
        return Order(
            order_id=reserved.order_id,
            customer_id=reserved.terms["customer_id"],
            fridge_id=fridge_id,
            venue_id=venue_id,
            city_id=city_id,
            lines=reserved.terms["lines"],
            total=reserved.terms["total"],
            currency=reserved.terms["currency"],
            placed_at=reserved.placed_at,
            payment_due_by=reserved.payment_due_by,
            request_fingerprint=reserved.terms["fingerprint"],
        )

    def conversation(self, order_id: str) -> str | None:
        """The correlation id the order was born with (its first event's): the conversation
        its later events join. None for an order stored before causes were, or for an id
        that names no order (the caller's own read of the order says NotFound)."""
        try:
            stream = Order.create_id(order_id)
        except ValueError:
            return None
        for born in self.store.events.get(stream, lte=1):
            cause = cause_of(born)
            return cause.correlation_id if cause is not None and cause.correlation_id else None
        return None

    def ensure_order(self, order_id: str, fridge_id: str) -> Order:
        """The order; if the flow has not opened it yet, open it from the fridge's reservation."""
        existing = self._existing(order_id)
        if existing is not None:
            return existing
        fridge = self.catalogue.fridge(fridge_id)
        promised = fridge.promised(order_id)
        if promised is None or promised.outcome is not None:
            # Nothing to open, or settled without an order (reserved before orders were born
            # in the fridge): an order opened now would ask for money for meals not held.
            raise NotFound("order", order_id)
        return self.open_order(
            Reserved(
                order_id=order_id,
                fridge_stream=fridge.id,
                terms=promised.terms,
                placed_at=promised.placed_at,
                payment_due_by=promised.payment_due_by,
            )
        )

    def fridge_of(self, stream: UUID) -> tuple[str, str, str]:
        """A fridge's id, venue and city by its stream id (they never change once installed)."""
        known = self._fridges.get(stream)
        if known is None:
            fridge = self.catalogue.fridge_of_stream(stream)
            known = self._fridges[stream] = (fridge.fridge_id, fridge.venue_id, fridge.city_id)
        return known

    def order(self, order_id: str, customer_id: str | None = None) -> Order:
        """The order; with `customer_id`, only if it is theirs."""
        order = self._existing(order_id)
        if order is None:
            raise NotFound("order", order_id)
        if customer_id is not None and order.customer_id != customer_id:
            raise NotYourOrder(order_id)
        return order

    def cancel(
        self,
        order_id: str,
        customer_id: str | None = None,
        reason: str = "customer",
        fridge_id: str | None = None,
    ) -> OrderMoved:
        """Give an order up before pickup, paid or not: its meals go back on sale; unpaid it is
        cancelled, paid it is refunded. With `fridge_id`, an order the flow has not opened yet
        is opened from its reservation first, so a customer may cancel right after the 201.

        The fridge decides first, as it does for a pickup: a cancel and a pickup racing are
        told apart in the fridge's turn, so meals taken out are never also refunded. If this
        process dies after the release, the fulfilment flow moves the order on from it.
        """
        if fridge_id is not None:
            self.ensure_order(order_id, fridge_id)
        order = self.order(order_id, customer_id)
        now = self.clock()
        released = self.writer.execute(order.fridge_id, lambda fridge: fridge.cancel(order_id, now))
        moved = self.record_cancel(order_id, reason)
        return _latest(moved, moved, released.position)

    def record_cancel(self, order_id: str, reason: str = "customer") -> OrderMoved:
        """Move the order on from a cancel its fridge has already decided (released)."""
        return self._move(order_id, lambda order: order.cancel(reason))

    def authorise_payment(
        self, order_id: str, payment_ref: str, message_id: str = ""
    ) -> OrderMoved:
        """Paid (the money is held): confirm the reservation, then the order is ready for
        pickup until its pickup deadline.

        If the order ended before (expired, cancelled), the authorisation is recorded as too
        late and the fulfilment flow voids it. If the reservation was already released, the
        order cannot be fulfilled and its money goes back.
        """
        paid = self._move(order_id, lambda order: order.pay(payment_ref, message_id))
        order = self.order(order_id)
        if order.status != OrderStatus.PAID and order.status != OrderStatus.READY_FOR_PICKUP:
            return paid
        now = self.clock()
        lines = order.meal_lines()
        try:
            confirmed = self.writer.execute(
                order.fridge_id,
                lambda fridge: (fridge.confirm(order_id), _pickup_by(fridge, lines, now, self)),
            )
        except ReservationClosed:
            refunded = self._move(order_id, lambda order: order.refund("reservation released"))
            return _latest(paid, refunded)
        _, pickup_by = confirmed.value
        ready = self._move(order_id, lambda order: order.make_ready(pickup_by))
        return _latest(paid, ready, confirmed.position)

    def fail_payment(self, order_id: str, reason: str, message_id: str = "") -> OrderMoved:
        moved = self._move(order_id, lambda order: order.fail_payment(reason, message_id))
        return self._release(moved, ReleaseReason.PAYMENT_FAILED)

    def not_collected(self, order_id: str, policy: NoShowPolicy) -> OrderMoved:
        """The pickup window closed: the meals go back on sale; the money by `policy`."""
        now = self.clock()
        moved = self._move(order_id, lambda order: order.not_collected(now, policy))
        return self._release(moved, ReleaseReason.NOT_COLLECTED)

    def record_money(self, order_id: str, step: Callable[[Order], bool]) -> OrderMoved:
        """Record on the order what the processor did with its money (once)."""
        return self._move(order_id, step)

    def expire(self, order_id: str) -> OrderMoved:
        now = self.clock()
        moved = self._move(order_id, lambda order: order.expire(now))
        return self._release(moved, ReleaseReason.EXPIRED)

    def refund(self, order_id: str, reason: str) -> OrderMoved:
        moved = self._move(order_id, lambda order: order.refund(reason))
        return self._release(moved, ReleaseReason.REFUNDED)

    def pick_up(self, fridge_id: str, order_id: str) -> OrderMoved:
        """The fridge saw the customer take a paid order's meals."""
        order = self.order(order_id)
        if order.fridge_id != fridge_id:
            raise InvalidRequest(f"order {order_id} is for fridge {order.fridge_id}")
        now = self.clock()
        taken = self.writer.execute(fridge_id, lambda fridge: fridge.pick_up(order_id, now))
        moved = self._move(order_id, lambda order: order.pick_up(now))
        return _latest(moved, moved, taken.position)

    def release_meals(self, order_id: str, reason: ReleaseReason) -> OrderMoved:
        """Put an ended order's meals back on sale (a no-op if they already are)."""
        order = self.order(order_id)
        return self._release(OrderMoved(order_id, OrderStatus(order.status), None), reason)

    def release_reservation(
        self, fridge_id: str, order_id: str, reason: ReleaseReason
    ) -> OrderMoved:
        """Release a reservation that has no order (a crash between reserving and recording)."""
        now = self.clock()
        released = self.writer.execute(
            fridge_id, lambda fridge: fridge.release(order_id, reason, now)
        )
        return OrderMoved(order_id, "released", released.position)

    def stock_expiry(self, fridge_id: str) -> OrderMoved:
        """Release every unpaid reservation of a fridge whose deadline has passed."""
        now = self.clock()
        expired = self.writer.execute(fridge_id, lambda fridge: fridge.expire_reservations(now))
        return OrderMoved(",".join(expired.value), "released", expired.position)

    def _release(self, moved: OrderMoved, reason: ReleaseReason) -> OrderMoved:
        """The order gave up its meals: put them back on sale (a no-op if already released)."""
        fridge_id = self.order(moved.order_id).fridge_id
        now = self.clock()
        released = self.writer.execute(
            fridge_id, lambda fridge: fridge.release(moved.order_id, reason, now)
        )
        return _latest(moved, moved, released.position)

    def _move(self, order_id: str, step: Callable[[Order], bool]) -> OrderMoved:
        def attempt() -> OrderMoved:
            order = self.order(order_id)
            changed = step(order)
            position = self.store.append(order) if changed else self.store.position()
            return OrderMoved(order_id, OrderStatus(order.status), position)

        return on_conflict_retry(f"order {order_id}", attempt)

    def _existing(self, order_id: str) -> Order | None:
        try:
            order: Aggregate = self.store.repository.get(Order.create_id(order_id))
        except (AggregateNotFoundError, ValueError):
            return None
        return order if isinstance(order, Order) else None

    def _repeat(
        self,
        order_id: str,
        fridge_id: str,
        venue_id: str,
        promised: Promised | None,
        position: int | None,
    ) -> PlacedOrder:
        """The same request again: the order as it was placed, with its status if opened."""
        order = self._existing(order_id)
        if order is not None:
            return _placed(order, position, created=False)
        if promised is None:  # reserved before orders were born in the fridge, and never opened
            raise NotFound("order", order_id)
        status = promised.outcome or OrderStatus.PLACED  # the outcomes are order statuses
        return _as_promised(
            order_id,
            fridge_id,
            venue_id,
            promised.terms,
            promised.payment_due_by,
            status,
            position,
            created=False,
        )


def _pickup_by(
    fridge: Fridge, lines: Mapping[str, int], now: datetime, ordering: Ordering
) -> datetime:
    """The end of an order's pickup window, from the fridge's shelf as it is confirmed: the
    earliest best-before among its meals' fresh batches caps it."""
    today = fridge.today(now)
    fresh = [d for meal in lines for d in fridge.shelf(meal) if d >= today]
    last_day: date | None = min(fresh) if fresh else None
    return pickup_deadline(now, ordering.pickup_window, last_day, fridge.timezone)


def _as_promised(
    order_id: str,
    fridge_id: str,
    venue_id: str,
    terms: OrderTerms,
    payment_due_by: datetime,
    status: str,
    position: int | None,
    *,
    created: bool = True,
) -> PlacedOrder:
    """The order as its reservation promised it (before the flow has opened it)."""
    return PlacedOrder(
        order_id=order_id,
        status=status,
        fridge_id=fridge_id,
        venue_id=venue_id,
        lines=terms["lines"],
        total=terms["total"],
        currency=terms["currency"],
        payment_due_by=payment_due_by,
        position=position,
        created=created,
    )


def _placed(order: Order, position: int | None, *, created: bool) -> PlacedOrder:
    return PlacedOrder(
        order_id=order.order_id,
        status=OrderStatus(order.status),
        fridge_id=order.fridge_id,
        venue_id=order.venue_id,
        lines=order.lines,
        total=order.total,
        currency=order.currency,
        payment_due_by=order.payment_due_by,
        position=position,
        created=created,
    )


def _latest(first: OrderMoved, last: OrderMoved, position: int | None = None) -> OrderMoved:
    positions = [p for p in (first.position, last.position, position) if p is not None]
    return OrderMoved(last.order_id, last.status, max(positions) if positions else None)
