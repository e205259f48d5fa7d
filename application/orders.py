"""Ordering: place an order (reserve on the fridge, then create the order) and move it on.

Each step appends to one aggregate. Steps that touch the order and then the fridge are
idempotent on the order id, so the fulfilment flow can repeat any of them after a crash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.catalogue import Catalogue
from application.clock import Clock
from application.errors import IdempotencyKeyReused, NotFound, NotYourOrder
from application.fridge_writer import FridgeWriter
from application.retry import on_conflict_retry
from application.store import EventStore
from domain.errors import InvalidRequest, ReservationClosed
from domain.order import Order, OrderLine, OrderStatus
from domain.values import PAYMENT_WINDOW, ReleaseReason, meal_lines, natural_id, order_id_for


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


def fingerprint(fridge_id: str, lines: Mapping[str, int]) -> str:
    body = json.dumps({"fridge_id": fridge_id, "lines": sorted(lines.items())})
    return hashlib.sha256(body.encode()).hexdigest()


class Ordering:
    def __init__(
        self, store: EventStore, writer: FridgeWriter, catalogue: Catalogue, clock: Clock
    ) -> None:
        self.store = store
        self.writer = writer
        self.catalogue = catalogue
        self.clock = clock

    def place(
        self, customer_id: str, idempotency_key: str, fridge_id: str, lines: Mapping[str, int]
    ) -> PlacedOrder:
        """Reserve the meals on the fridge, then record the order. 409 (SoldOut) if they don't fit.

        A crash between the two appends leaves a reservation without an order; it expires
        like any unpaid one. Repeating the request finds the order, or reserves once more.
        """
        natural_id("fridge_id", fridge_id)
        checked = meal_lines(lines)
        order_id = order_id_for(customer_id, idempotency_key)
        request = fingerprint(fridge_id, checked)
        existing = self._existing(order_id)
        if existing is not None:
            return self._repeat(existing, customer_id, request)

        priced, currency = self._price(checked)
        now = self.clock()
        due = now + PAYMENT_WINDOW
        reserved = self.writer.execute(
            fridge_id,
            lambda fridge: (
                fridge.reserve(order_id, checked, due, now),
                fridge.venue_id,
                fridge.city_id,
            ),
        )
        _, venue_id, city_id = reserved.value
        order = Order(
            order_id=order_id,
            customer_id=customer_id,
            fridge_id=fridge_id,
            venue_id=venue_id,
            city_id=city_id,
            lines=priced,
            total=sum((line["unit_price"] * line["quantity"] for line in priced), Decimal("0.00")),
            currency=currency,
            placed_at=now,
            payment_due_by=due,
            request_fingerprint=request,
        )
        try:
            position = self.store.append(order)
        except IntegrityError:  # the same request raced us; both reserved the same order id
            return self._repeat(self.order(order_id), customer_id, request)
        return _placed(order, position, created=True)

    def order(self, order_id: str, customer_id: str | None = None) -> Order:
        """The order; with `customer_id`, only if it is theirs."""
        order = self._existing(order_id)
        if order is None:
            raise NotFound("order", order_id)
        if customer_id is not None and order.customer_id != customer_id:
            raise NotYourOrder(order_id)
        return order

    def cancel(
        self, order_id: str, customer_id: str | None = None, reason: str = "customer"
    ) -> OrderMoved:
        self.order(order_id, customer_id)
        moved = self._move(order_id, lambda order: order.cancel(reason))
        return self._release(moved, ReleaseReason.CANCELLED)

    def authorise_payment(self, order_id: str, payment_ref: str) -> OrderMoved:
        """Paid: confirm the reservation, then the order is ready for pickup.

        If the reservation was already released (payment came after the deadline), the
        order cannot be fulfilled and is refunded.
        """
        paid = self._move(order_id, lambda order: order.pay(payment_ref))
        fridge_id = self.order(order_id).fridge_id
        try:
            confirmed = self.writer.execute(fridge_id, lambda fridge: fridge.confirm(order_id))
        except ReservationClosed:
            refunded = self._move(order_id, lambda order: order.refund("reservation released"))
            return _latest(paid, refunded)
        ready = self._move(order_id, lambda order: order.make_ready())
        return _latest(paid, ready, confirmed.position)

    def fail_payment(self, order_id: str, reason: str) -> OrderMoved:
        moved = self._move(order_id, lambda order: order.fail_payment(reason))
        return self._release(moved, ReleaseReason.PAYMENT_FAILED)

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

    def _repeat(self, order: Order, customer_id: str, request: str) -> PlacedOrder:
        if order.customer_id != customer_id or order.request_fingerprint != request:
            raise IdempotencyKeyReused(order.order_id)
        return _placed(order, self.store.position(), created=False)

    def _price(self, lines: Mapping[str, int]) -> tuple[list[OrderLine], str]:
        """Unit prices at ordering time, from the catalogue."""
        priced: list[OrderLine] = []
        currencies = set()
        for meal_id, quantity in lines.items():
            meal = self.catalogue.meal_for_pricing(natural_id("meal_id", meal_id))
            currencies.add(meal.currency)
            priced.append(OrderLine(meal_id=meal_id, quantity=quantity, unit_price=meal.price))
        if len(currencies) != 1:
            raise InvalidRequest("an order's meals must share one currency")
        return priced, currencies.pop()


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
