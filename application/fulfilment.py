"""Fulfilment: the process manager that carries an order from placed to picked up.

It follows the event store (at least once, from a checkpoint) and reacts. `react` is pure:
an event in, the steps it calls for out. `Fulfilment.carry_out` performs a step through the
services and the payment processor. A batch of events is worked through in order, except
that the processor is asked for the batch's authorisations side by side (`handle_all`): a
round trip to the processor is most of what an order costs here, and one at a time they
capped fulfilment below 100 orders a second. Every step is idempotent: the services on the
order id, the processor on the order id and the step (application/payments.py `key`), and
each money movement is recorded on the order after the processor made it, so a step
replayed after a crash asks again with the same key and records nothing twice.

  meals reserved          -> open the order from the reservation (the order's birth)
  order placed            -> ask the processor to authorise (hold) the money;
                             authorised at once -> pay, confirm, ready; declined -> failed
  payment authorised      -> confirm the reservation, ready for pickup (with its window)
  ready for pickup        -> keep its pickup deadline
  cancelled / payment failed / expired / refunded / not collected -> release the meals
  refunded, not collected, authorised too late, picked up -> settle the money: capture what
                             was handed over (or kept, under `charge`), void what never will
                             be captured, refund what was captured and given back
  meals missing (a count) -> cancel the unpaid order, give the paid one its money back
  meals picked up         -> the order is picked up
  reservation cancelled   -> the order is cancelled, or refunded if paid (the fridge decided)
  no answer by deadline   -> expire (driven by the open-reservations read model)
  pickup window closed    -> not collected (driven by the pickup deadlines it keeps)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import structlog

from application.causes import caused_by, reacting_to
from application.errors import NotFound
from application.orders import Ordering, Reserved
from application.payments import (
    Authorisation,
    PaymentAnswer,
    PaymentOutcome,
    PaymentProcessor,
    PaymentRefused,
)
from domain.causes import log_ids
from domain.errors import DomainError
from domain.fridge import Fridge
from domain.order import NoShowPolicy, Order, OrderStatus, OrderTerms
from domain.values import ReleaseReason

log = structlog.get_logger(__name__)

PROCESS = "fulfilment"


@contextmanager
def reacting(event: object, position: int) -> Iterator[None]:
    """Acting on `event`: the lines logged carry its position and ids (request, correlation,
    order, fridge), and what is recorded carries its correlation id, caused by it."""
    with (
        structlog.contextvars.bound_contextvars(position=position, **log_ids(event)),
        caused_by(reacting_to(event, PROCESS)),
    ):
        yield


ASKING_AT_ONCE = 16
"""Authorisations of one batch asked of the processor side by side, at most."""


@dataclass(frozen=True)
class OpenOrder:
    """A fridge reserved meals for an order: create the `Order` it promised."""

    order_id: str
    reserved: Reserved


@dataclass(frozen=True)
class RequestPayment:
    order_id: str
    amount: Decimal
    currency: str
    fridge_id: str = ""


@dataclass(frozen=True)
class MakeReady:
    order_id: str
    payment_ref: str


@dataclass(frozen=True)
class ReleaseMeals:
    order_id: str
    reason: ReleaseReason


@dataclass(frozen=True)
class SettleMoney:
    """Capture, void or refund whatever the order's state says is due (once each)."""

    order_id: str


@dataclass(frozen=True)
class KeepPickupDeadline:
    order_id: str
    pickup_by: datetime


@dataclass(frozen=True)
class GiveUp:
    """A count showed the order's meals gone: it cannot be fulfilled."""

    order_id: str
    fridge_stream: str  # fridge events name their fridge only by stream id


@dataclass(frozen=True)
class RecordPickup:
    order_id: str


@dataclass(frozen=True)
class RecordCancel:
    """The fridge released an order's meals because it was cancelled: move the order on."""

    order_id: str
    fridge_stream: str


Step = (
    OpenOrder
    | RequestPayment
    | MakeReady
    | ReleaseMeals
    | SettleMoney
    | KeepPickupDeadline
    | GiveUp
    | RecordPickup
    | RecordCancel
)

ENDINGS: dict[type[object], ReleaseReason] = {
    Order.Cancelled: ReleaseReason.CANCELLED,
    Order.PaymentFailed: ReleaseReason.PAYMENT_FAILED,
    Order.Expired: ReleaseReason.EXPIRED,
    Order.NotCollected: ReleaseReason.NOT_COLLECTED,
}


def react(event: object) -> list[Step]:
    """The steps an event calls for. Events that call for none are ignored."""
    match event:
        case Order.Placed(order_id=order_id, total=total, currency=currency):
            return [RequestPayment(order_id, total, currency, event.fridge_id)]
        case Order.PaymentAuthorised(originator_id=order_stream, payment_ref=payment_ref):
            return [MakeReady(str(order_stream), payment_ref)]
        case Order.ReadyForPickup(originator_id=order_stream, pickup_by=pickup_by):
            # (ready before pickup windows existed: no deadline to keep)
            return [] if pickup_by is None else [KeepPickupDeadline(str(order_stream), pickup_by)]
        case Order.Refunded(originator_id=order_stream):
            order_id = str(order_stream)
            return [ReleaseMeals(order_id, ReleaseReason.REFUNDED), SettleMoney(order_id)]
        case Order.NotCollected(originator_id=order_stream):
            order_id = str(order_stream)
            return [ReleaseMeals(order_id, ReleaseReason.NOT_COLLECTED), SettleMoney(order_id)]
        case Order.AuthorisedTooLate(originator_id=order_stream):
            return [SettleMoney(str(order_stream))]
        case Order.PickedUp(originator_id=order_stream):
            return [SettleMoney(str(order_stream))]
        case Order.Cancelled() | Order.PaymentFailed() | Order.Expired():
            return [ReleaseMeals(str(event.originator_id), ENDINGS[type(event)])]
        case Fridge.MealsReserved():
            reserved = reservation_of(event)
            return [] if reserved is None else [OpenOrder(reserved.order_id, reserved)]
        case Fridge.ReservedMealsMissing(originator_id=fridge_stream, order_ids=order_ids):
            return [GiveUp(order_id, str(fridge_stream)) for order_id in order_ids]
        case Fridge.MealsPickedUp(order_id=order_id):
            return [RecordPickup(order_id)]
        case Fridge.ReservationReleased(
            originator_id=fridge_stream, order_id=order_id, reason=ReleaseReason.CANCELLED
        ):
            return [RecordCancel(order_id, str(fridge_stream))]
    return []


def reservation_of(event: Fridge.MealsReserved) -> Reserved | None:
    """The order a reservation event gave birth to; None for reservations recorded before
    orders were born in the fridge (the API appended their `Order` itself)."""
    if event.priced_lines is None or event.total is None:
        return None
    return Reserved(
        order_id=event.order_id,
        fridge_stream=event.originator_id,
        terms=OrderTerms(
            customer_id=event.customer_id,
            lines=event.priced_lines,
            total=event.total,
            currency=event.currency,
            fingerprint=event.fingerprint,
        ),
        placed_at=event.reserved_at,
        payment_due_by=event.expires_at,
    )


@dataclass(frozen=True)
class Overdue:
    """An open, unpaid reservation whose deadline has passed (from the reservations model)."""

    order_id: str
    fridge_id: str
    expires_at: datetime


class PickupDeadlines(Protocol):
    """Ready orders by the end of their pickup window: kept by fulfilment, idempotently."""

    def keep(self, order_id: str, pickup_by: datetime) -> None: ...

    def keep_all(self, deadlines: Mapping[str, datetime]) -> None: ...

    def drop(self, order_id: str) -> None: ...

    def due(self, now: datetime) -> list[str]: ...


class InMemoryDeadlines:
    """Pickup deadlines for tests and for a process that keeps none across restarts."""

    def __init__(self) -> None:
        self.deadlines: dict[str, datetime] = {}

    def keep(self, order_id: str, pickup_by: datetime) -> None:
        self.deadlines[order_id] = pickup_by

    def keep_all(self, deadlines: Mapping[str, datetime]) -> None:
        self.deadlines.update(deadlines)

    def drop(self, order_id: str) -> None:
        self.deadlines.pop(order_id, None)

    def due(self, now: datetime) -> list[str]:
        return sorted(o for o, by in self.deadlines.items() if by <= now)


class Fulfilment:
    def __init__(
        self,
        ordering: Ordering,
        payments: PaymentProcessor,
        deadlines: PickupDeadlines | None = None,
        no_show: NoShowPolicy = NoShowPolicy.RELEASE,
    ) -> None:
        self.ordering = ordering
        self.payments = payments
        self.deadlines = deadlines or InMemoryDeadlines()
        self.no_show = no_show
        self._asking = ThreadPoolExecutor(ASKING_AT_ONCE, thread_name_prefix="asking")

    def handle(self, event: object, position: int = 0) -> None:
        with reacting(event, position):
            for step in react(event):
                self.carry_out(step)

    def handle_all(self, batch: Sequence[tuple[object, int]]) -> None:
        """Carry out what a batch of events (with their positions) calls for, in order, with
        three shortcuts that each save a round trip to a store or the processor per order:

        - the batch's orders are opened in one append (one at a time if any was opened);
        - the processor is asked for the batch's authorisations side by side; a step of an
          order waits for that order's answer to be recorded, so one order's steps keep
          their order;
        - pickup deadlines are kept in one write at the end (or before another step of their
          order), an order the batch shows ready is not made ready again, and one that is
          paid but not shown ready is looked at only at the end (or before another step of
          its order): the webhook's request has most often made it ready by then.

        Everything is done when this returns, or it raises and the batch is carried out
        again: every step is idempotent, the processor's on the order id."""
        steps = [(event, position, step) for event, position in batch for step in react(event)]
        ready = {str(e.originator_id) for e, _ in batch if isinstance(e, Order.ReadyForPickup)}
        opened = self._open_all(
            [(step.reserved, event) for event, _, step in steps if isinstance(step, OpenOrder)]
        )
        asked: dict[str, tuple[object, int, RequestPayment, Future[PaymentAnswer | None]]] = {}
        keep: dict[str, datetime] = {}
        later: dict[str, tuple[object, int, MakeReady]] = {}
        try:
            for event, position, step in steps:
                with reacting(event, position):
                    if step.order_id in asked:
                        self._record_answer(*asked.pop(step.order_id))
                    if step.order_id in keep:
                        self._keep(keep)
                    if step.order_id in later:
                        self._carry_out_later(*later.pop(step.order_id))
                    match step:
                        case OpenOrder(order_id) if order_id in opened:
                            log.info("fulfilment_step", step="OpenOrder", order_id=order_id)
                        case MakeReady(order_id) if order_id in ready:
                            pass  # the webhook made it ready in the same breath
                        case MakeReady(order_id):
                            # Most often the webhook's request is still making it ready: look
                            # at the end of the batch, rather than race it for the fridge now.
                            later[order_id] = (event, position, step)
                        case KeepPickupDeadline(order_id, pickup_by):
                            keep[order_id] = pickup_by
                        case RequestPayment():
                            asking = self._ask(step)
                            if asking is not None:
                                asked[step.order_id] = (event, position, step, asking)
                        case _:
                            self.carry_out(step)
            while asked:
                self._record_answer(*asked.pop(next(iter(asked))))
            for waiting in later.values():
                self._carry_out_later(*waiting)
            self._keep(keep)
        finally:  # a failure leaves no question running on into the next attempt
            wait([asking for *_, asking in asked.values()])

    def _open_all(self, reservations: list[tuple[Reserved, object]]) -> set[str]:
        """Open the orders of these reservations (with the events that made them) in one
        append: the ids opened, or none if any was opened already (a batch carried out
        again), which then open one by one, as does an order reserved twice in the batch
        (its key sent to two fridges). Each order's first event carries its own cause."""
        times = Counter(reserved.order_id for reserved, _ in reservations)
        once = [
            (reserved, event) for reserved, event in reservations if times[reserved.order_id] == 1
        ]
        causes = {reserved.order_id: reacting_to(event, PROCESS) for reserved, event in once}
        if len(once) < 2 or not self.ordering.open_orders([r for r, _ in once], causes):
            return set()
        return set(causes)

    def _keep(self, deadlines: dict[str, datetime]) -> None:
        if deadlines:
            self.deadlines.keep_all(deadlines)
            deadlines.clear()

    def carry_out(self, step: Step) -> None:
        log.info("fulfilment_step", step=type(step).__name__, order_id=step.order_id)
        with self._moot(step):
            self._carry_out(step)

    @contextmanager
    def _moot(self, step: Step) -> Iterator[None]:
        try:
            yield
        except (DomainError, NotFound, PaymentRefused) as moved_on:
            # The order went somewhere this step cannot follow (cancelled while paying, ...).
            # That is an outcome, not a failure: record it and go on with the next event.
            log.info("fulfilment_step_moot", order_id=step.order_id, why=str(moved_on))

    def _ask(self, step: RequestPayment) -> Future[PaymentAnswer | None] | None:
        """Ask the processor to authorise, in the background; None if not to be asked."""
        log.info("fulfilment_step", step=type(step).__name__, order_id=step.order_id)
        with self._moot(step):
            if self.ordering.order(step.order_id).status != OrderStatus.PLACED:
                return None  # replayed after the order moved on: do not ask for money again
            request = Authorisation(step.order_id, step.amount, step.currency, step.fridge_id)
            return self._asking.submit(self.payments.request_authorisation, request)
        return None

    def _record_answer(
        self,
        event: object,
        position: int,
        step: RequestPayment,
        asking: Future[PaymentAnswer | None],
    ) -> None:
        with reacting(event, position), self._moot(step):
            self._answered(step.order_id, asking.result())

    def _carry_out_later(self, event: object, position: int, step: MakeReady) -> None:
        with reacting(event, position):
            self.carry_out(step)

    def expire_overdue(self, overdue: Iterable[Overdue]) -> int:
        """Expire unpaid orders past their deadline; release reservations that have no order."""
        expired = 0
        for reservation in overdue:
            try:
                # Opened here if the flow has not reached the reservation event yet.
                self.ordering.ensure_order(reservation.order_id, reservation.fridge_id)
                self.ordering.expire(reservation.order_id)
            except NotFound:  # reserved before orders were born in the fridge, never recorded
                self.ordering.stock_expiry(reservation.fridge_id)
            except DomainError as moved_on:
                log.info("expiry_moot", order_id=reservation.order_id, why=str(moved_on))
                continue
            expired += 1
        return expired

    def close_pickup_windows(self, now: datetime) -> int:
        """Orders whose pickup window closed with the meals uncollected: not collected."""
        closed = 0
        for order_id in self.deadlines.due(now):
            try:
                if self.ordering.order(order_id).status == OrderStatus.READY_FOR_PICKUP:
                    self.ordering.not_collected(order_id, self.no_show)
                    closed += 1
            except (DomainError, NotFound) as moved_on:
                log.info("pickup_window_moot", order_id=order_id, why=str(moved_on))
            self.deadlines.drop(order_id)
        return closed

    def _carry_out(self, step: Step) -> None:
        match step:
            case OpenOrder(order_id, reserved):
                self._open(reserved)
            case RequestPayment(order_id, amount, currency, fridge_id):
                if self.ordering.order(order_id).status != OrderStatus.PLACED:
                    return  # replayed after the order moved on: do not ask for money again
                answer = self.payments.request_authorisation(
                    Authorisation(order_id, amount, currency, fridge_id)
                )
                self._answered(order_id, answer)
            case MakeReady(order_id, payment_ref):
                # Whoever recorded the authorisation (the webhook) most often made the order
                # ready in the same breath: then there is nothing left to confirm.
                if self.ordering.order(order_id).status != OrderStatus.READY_FOR_PICKUP:
                    self._paid(order_id, payment_ref)
            case ReleaseMeals(order_id, reason):
                self.ordering.release_meals(order_id, reason)
            case SettleMoney(order_id):
                self._settle(order_id)
            case KeepPickupDeadline(order_id, pickup_by):
                self.deadlines.keep(order_id, pickup_by)
            case GiveUp(order_id, fridge_stream):
                self._give_up(order_id, fridge_stream)
            case RecordPickup(order_id):
                self.ordering.pick_up(self.ordering.order(order_id).fridge_id, order_id)
                self.deadlines.drop(order_id)
            case RecordCancel(order_id, fridge_stream):
                fridge_id, _, _ = self.ordering.fridge_of(UUID(fridge_stream))
                if self.ordering.order(order_id).fridge_id == fridge_id:
                    # (elsewhere: the same key reserved at a second fridge, let go in `_open`)
                    self.ordering.record_cancel(order_id)

    def _answered(self, order_id: str, answer: PaymentAnswer | None) -> None:
        if answer is None:
            return  # the webhook or the deadline decides
        if answer.outcome == PaymentOutcome.AUTHORISED:
            self._paid(order_id, answer.payment_ref)
        else:
            self.ordering.fail_payment(order_id, answer.reason or "declined")

    def _paid(self, order_id: str, payment_ref: str) -> None:
        # An order that ended meanwhile records the authorisation as too late: voided next.
        self.ordering.authorise_payment(order_id, payment_ref)

    def _settle(self, order_id: str) -> None:
        """Move the money the order's state calls for, then record it (each at most once)."""
        order = self.ordering.order(order_id)
        ref = order.payment_ref
        if ref is None:
            return
        if order.money_to_capture():
            self.payments.capture(order_id, ref, order.total, order.currency)
            self.ordering.record_money(order_id, lambda o: o.record_capture())
        elif order.money_to_void():
            self.payments.void(order_id, ref)
            reason = f"voided: order {OrderStatus(order.status)}"
            self.ordering.record_money(order_id, lambda o: o.record_void(reason))
        elif order.money_to_refund():
            self.payments.refund(order_id, ref, order.total, order.currency)
            self.ordering.record_money(order_id, lambda o: o.record_refund("refunded"))

    def _open(self, reserved: Reserved) -> None:
        order = self.ordering.open_order(reserved)
        fridge_id, _, _ = self.ordering.fridge_of(reserved.fridge_stream)
        if order.fridge_id != fridge_id:
            # The same key was sent to two fridges at once: each fridge decides only its own
            # repeats. The order is the reservation the log saw first; this one is let go.
            log.warning("order_key_reused_across_fridges", order_id=reserved.order_id)
            self.ordering.release_reservation(fridge_id, reserved.order_id, ReleaseReason.CANCELLED)

    def _give_up(self, order_id: str, fridge_stream: str) -> None:
        fridge_id, _, _ = self.ordering.fridge_of(UUID(fridge_stream))
        try:
            order = self.ordering.ensure_order(order_id, fridge_id)
        except NotFound:  # reserved before orders were born in the fridge, never recorded
            self.ordering.release_reservation(fridge_id, order_id, ReleaseReason.CANCELLED)
            return
        if order.status == OrderStatus.PLACED:
            self.ordering.cancel(order_id, reason="meals missing from the fridge")
        else:
            self.ordering.refund(order_id, "meals missing from the fridge")
