"""Fulfilment on each store: events in, order and fridge moved on, idempotent on replay."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import ProgrammingError

from application.causes import caused_by
from application.fulfilment import Fulfilment, InMemoryDeadlines, MakeReady, Overdue
from application.payment_messages import PaymentMessage, take_in
from application.payments import (
    Authorisation,
    PaymentAnswer,
    PaymentOutcome,
    PaymentUnavailable,
)
from domain.causes import Cause, cause_of
from domain.order import NoShowPolicy, Order, OrderStatus
from ops.root import WriteSide
from tests.conftest import FakeClock
from tests.integration.world import World, make_world, place_and_open


@dataclass
class ScriptedProcessor:
    """The external processor's port, answering as each test scripts it."""

    answer: PaymentOutcome | None = PaymentOutcome.AUTHORISED
    asked: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    refunded: list[tuple[str, Decimal]] = field(default_factory=list)
    captured: list[tuple[str, Decimal]] = field(default_factory=list)

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        order_id = request.order_id
        self.asked.append(order_id)
        if self.answer is None:
            return None
        return PaymentAnswer(self.answer, f"psp-{order_id[:6]}", "card declined")

    def capture(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        self.captured.append((order_id, amount))

    def void(self, order_id: str, payment_ref: str) -> None:
        self.voided.append(order_id)

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        self.refunded.append((order_id, amount))


def follow(
    side: WriteSide, fulfilment: Fulfilment, after: int = 0, *, in_batches: bool = False
) -> int:
    """Feed every event after `after` to fulfilment, as its worker would: one event at a
    time, or `in_batches` as the fulfilment process hands them over. The new position."""
    position = after
    while True:
        batch = side.store.recorder.select_notifications(
            start=position, limit=100, inclusive_of_start=position == 0
        )
        if not batch:
            return position
        events = [(side.store.mapper.to_domain_event(n), n.id) for n in batch]
        if in_batches:
            fulfilment.handle_all(events)
        else:
            for event, at in events:
                fulfilment.handle(event, at)
        position = batch[-1].id


def follow_in_batches(side: WriteSide, fulfilment: Fulfilment, after: int = 0) -> int:
    return follow(side, fulfilment, after, in_batches=True)


@dataclass
class AnswersTogether(ScriptedProcessor):
    """Answers no authorisation until `together` of them are being asked at the same time
    (asked one after the other, the first waits in vain and raises BrokenBarrierError)."""

    together: threading.Barrier = field(default_factory=lambda: threading.Barrier(3, timeout=10))
    unavailable: set[str] = field(default_factory=set)

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        if request.order_id in self.unavailable:
            raise PaymentUnavailable("no answer")
        self.together.wait()
        return super().request_authorisation(request)


def available(side: WriteSide, world: World) -> int:
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    return fridge.available(world.soup, fridge.today(side.clock()))


def three_soups(side: WriteSide) -> list[str]:
    """Alice, Bob and Carol each order one of a new fridge's three soups: their order ids."""
    world = make_world(side, soup_units=3)
    return [
        side.ordering.place(customer, "k", world.fridge_id, {world.soup: 1}).order_id
        for customer in ("alice", "bob", "carol")
    ]


@pytest.fixture
def processor() -> ScriptedProcessor:
    return ScriptedProcessor()


@pytest.fixture
def fulfilment(side: WriteSide, processor: ScriptedProcessor) -> Fulfilment:
    return Fulfilment(side.ordering, processor)


def test_an_authorised_order_becomes_ready_and_replaying_asks_for_money_once(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=3)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    follow(side, fulfilment)
    order = side.ordering.order(placed.order_id)
    assert order.status == OrderStatus.READY_FOR_PICKUP
    assert side.catalogue.fridge(world.fridge_id).reservation_status(placed.order_id) == "confirmed"
    follow(side, fulfilment)  # at least once: everything again from the start
    assert processor.asked == [placed.order_id]
    assert side.ordering.order(placed.order_id).version == order.version


def test_a_batch_asks_for_its_orders_money_side_by_side_and_each_is_ready_once(
    side: WriteSide,
) -> None:
    placed = three_soups(side)
    processor = AnswersTogether()
    fulfilment = Fulfilment(side.ordering, processor)
    follow_in_batches(side, fulfilment)
    assert sorted(processor.asked) == sorted(placed)
    orders = [side.ordering.order(order_id) for order_id in placed]
    assert {order.status for order in orders} == {OrderStatus.READY_FOR_PICKUP}
    follow_in_batches(side, fulfilment)  # at least once: everything again from the start
    assert sorted(processor.asked) == sorted(placed)
    assert [side.ordering.order(o).version for o in placed] == [o.version for o in orders]


def test_each_order_a_batch_opens_and_pays_carries_its_own_requests_correlation_id(
    side: WriteSide,
) -> None:
    world = make_world(side, soup_units=3)
    placed = {}
    for customer in ("alice", "bob", "carol"):
        with caused_by(Cause(f"req-{customer}", f"checkout-{customer}", "", "api")):
            placed[customer] = side.ordering.place(customer, "k", world.fridge_id, {world.soup: 1})
    fulfilment = Fulfilment(side.ordering, AnswersTogether())

    follow_in_batches(side, fulfilment)  # one batch: opened in one append, asked side by side

    for customer, order in placed.items():
        events = list(side.store.events.get(Order.create_id(order.order_id)))
        assert [type(e).__qualname__ for e in events][:3] == [
            "Order.Placed",
            "Order.PaymentAuthorised",
            "Order.ReadyForPickup",
        ]
        causes = [cause_of(event) for event in events]
        assert {(c.correlation_id, c.process) for c in causes if c} == {
            (f"checkout-{customer}", "fulfilment")
        }
        assert None not in causes


def test_a_batch_with_an_unanswered_authorisation_is_carried_out_again_whole(
    side: WriteSide,
) -> None:
    placed = three_soups(side)
    processor = AnswersTogether(together=threading.Barrier(2, timeout=10))
    processor.unavailable.add(placed[0])
    fulfilment = Fulfilment(side.ordering, processor)
    with pytest.raises(PaymentUnavailable):  # the process tries the batch again later
        follow_in_batches(side, fulfilment)
    processor.unavailable.clear()
    processor.together = threading.Barrier(1)
    follow_in_batches(side, fulfilment)
    assert {side.ordering.order(o).status for o in placed} == {OrderStatus.READY_FOR_PICKUP}


def test_a_store_that_appends_one_stream_at_a_time_still_opens_a_batchs_orders(
    side: WriteSide, processor: ScriptedProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = side.store.save

    def one_stream_at_a_time(*aggregates: Any, **kwargs: Any) -> Any:
        if len(aggregates) > 1:  # as KurrentDB's recorder refuses, before it writes
            raise ProgrammingError("KurrentDB can't atomically store events in more than one")
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(side.store, "save", one_stream_at_a_time)
    placed = three_soups(side)
    follow_in_batches(side, Fulfilment(side.ordering, processor))
    assert {side.ordering.order(o).status for o in placed} == {OrderStatus.READY_FOR_PICKUP}


def test_an_order_ready_and_picked_up_within_one_batch_keeps_no_pickup_deadline(
    side: WriteSide, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=1)
    deadlines = InMemoryDeadlines()
    fulfilment = Fulfilment(side.ordering, processor, deadlines)
    order_id = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 1}).order_id
    side.ordering.authorise_payment(order_id, "psp-1", "msg-1")  # as the webhook does
    side.ordering.pick_up(world.fridge_id, order_id)
    follow_in_batches(side, fulfilment)  # all of it in one batch
    assert deadlines.deadlines == {}  # kept when ready, dropped when picked up, in order
    assert processor.captured == [(order_id, Decimal("6.50"))]
    assert processor.asked == []  # it was paid before the flow came to ask


def test_an_order_left_paid_but_not_ready_is_made_ready_by_the_batch(
    side: WriteSide, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=1)
    order_id = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 1}).order_id
    order = side.ordering.order(order_id)
    order.pay("psp-1", "msg-1")  # the webhook's request died before confirming the fridge
    side.store.append(order)
    follow_in_batches(side, Fulfilment(side.ordering, processor))
    assert side.ordering.order(order_id).status == OrderStatus.READY_FOR_PICKUP
    assert side.catalogue.fridge(world.fridge_id).reservation_status(order_id) == "confirmed"
    assert processor.asked == []


def test_a_declined_payment_fails_the_order_and_puts_the_meals_back(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    processor.answer = PaymentOutcome.DECLINED
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    follow(side, fulfilment)
    assert side.ordering.order(placed.order_id).status == OrderStatus.PAYMENT_FAILED
    assert available(side, world) == 2


def test_no_answer_by_the_deadline_expires_the_order(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor, clock: FakeClock
) -> None:
    processor.answer = None
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    follow(side, fulfilment)
    assert side.ordering.order(placed.order_id).status == OrderStatus.PLACED
    clock.advance(minutes=11)
    overdue = [Overdue(placed.order_id, world.fridge_id, placed.payment_due_by)]
    assert fulfilment.expire_overdue(overdue) == 1
    assert side.ordering.order(placed.order_id).status == OrderStatus.EXPIRED
    assert available(side, world) == 2


def test_money_authorised_for_an_order_cancelled_meanwhile_is_voided(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2)
    placed = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 1})
    order_placed = next(side.store.events.get(side.ordering.order(placed.order_id).id))
    side.ordering.cancel(placed.order_id, "alice")
    # The processor's answer arrives for the placed order only after the customer cancelled.
    fulfilment.handle(order_placed)
    assert processor.voided == []  # the order had moved on: nobody was asked for money
    processor.asked.clear()
    assert side.ordering.order(placed.order_id).status == OrderStatus.CANCELLED
    fulfilment.carry_out(MakeReady(placed.order_id, "psp-late"))
    follow(side, fulfilment)  # the late authorisation is recorded, then voided
    follow(side, fulfilment)  # and replaying voids nothing twice
    assert processor.voided == [placed.order_id]
    order = side.ordering.order(placed.order_id)
    assert (order.status, order.voided, order.captured) == (OrderStatus.CANCELLED, True, False)
    assert available(side, world) == 2


def test_meals_missing_from_a_count_cancel_unpaid_and_void_paid_orders(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=2)
    paid = side.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})
    position = follow(side, fulfilment)
    processor.answer = None
    unpaid = side.ordering.place("bob", "k2", world.fridge_id, {world.soup: 1})
    position = follow(side, fulfilment, position)
    side.stock.report_counts(world.fridge_id, "r-1", clock.now, {world.soup: 0})
    follow(side, fulfilment, position)
    assert side.ordering.order(unpaid.order_id).status == OrderStatus.CANCELLED
    # One unit short covers the newest reservation (bob's); a count of 0 takes alice's too.
    assert side.ordering.order(paid.order_id).status == OrderStatus.REFUNDED
    # The money was held, never taken: the authorisation is voided, nothing is refunded.
    assert (processor.voided, processor.refunded) == ([paid.order_id], [])
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.held(world.soup) == 0 and fridge.open_orders() == []


def test_a_pickup_seen_by_the_fridge_completes_the_order_and_captures_once(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 1})
    position = follow(side, fulfilment)
    now = side.clock()
    side.writer.execute(world.fridge_id, lambda f: f.pick_up(placed.order_id, now))
    follow(side, fulfilment, position)
    follow(side, fulfilment)  # replayed from the start: captured once
    order = side.ordering.order(placed.order_id)
    assert (order.status, order.captured) == (OrderStatus.PICKED_UP, True)
    assert processor.captured == [(placed.order_id, placed.total)]


def test_missing_meals_of_a_reservation_without_an_order_are_released(
    side: WriteSide, fulfilment: Fulfilment, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=1)
    now, due = clock.now, clock.now.replace(hour=23)
    side.writer.execute(world.fridge_id, lambda f: f.reserve("orphan", {world.soup: 1}, due, now))
    position = follow(side, fulfilment)
    side.stock.report_counts(world.fridge_id, "r-1", clock.now, {world.soup: 0})
    follow(side, fulfilment, position)
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.open_orders() == [] and fridge.reservation_status("orphan") == "cancelled"


@pytest.mark.parametrize(
    ("policy", "captured", "voided"),
    [(NoShowPolicy.RELEASE, False, True), (NoShowPolicy.CHARGE, True, False)],
)
def test_a_closed_pickup_window_puts_the_meals_back_and_settles_by_policy(
    side: WriteSide,
    processor: ScriptedProcessor,
    clock: FakeClock,
    policy: NoShowPolicy,
    captured: bool,
    voided: bool,
) -> None:
    fulfilment = Fulfilment(side.ordering, processor, no_show=policy)
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    position = follow(side, fulfilment)
    order = side.ordering.order(placed.order_id)
    assert order.pickup_by is not None and order.pickup_by <= clock.now + timedelta(hours=2)
    assert fulfilment.close_pickup_windows(clock.now) == 0  # still open
    clock.advance(minutes=121)
    assert fulfilment.close_pickup_windows(clock.now) == 1
    follow(side, fulfilment, position)
    follow(side, fulfilment)  # replayed: nothing moves twice
    order = side.ordering.order(placed.order_id)
    assert (order.status, order.captured, order.voided) == (
        OrderStatus.NOT_COLLECTED,
        captured,
        voided,
    )
    assert processor.captured == ([(placed.order_id, placed.total)] if captured else [])
    assert processor.voided == ([placed.order_id] if voided else [])
    assert available(side, world) == 2
    assert side.catalogue.fridge(world.fridge_id).reservation_status(placed.order_id) == (
        "not_collected"
    )


def test_an_operator_refund_returns_captured_money_once(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 1})
    follow(side, fulfilment)
    side.ordering.pick_up(world.fridge_id, placed.order_id)
    follow(side, fulfilment)
    side.ordering.refund(placed.order_id, "complaint: cold soup")
    follow(side, fulfilment)
    follow(side, fulfilment)
    order = side.ordering.order(placed.order_id)
    assert (order.status, order.money_refunded) == (OrderStatus.REFUNDED, True)
    assert processor.refunded == [(placed.order_id, placed.total)]
    assert processor.voided == []


def test_the_processors_webhook_records_its_events_in_the_orders_conversation(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    processor.answer = None  # the answer comes by webhook
    world = make_world(side, soup_units=2)
    with caused_by(Cause("req-checkout", "checkout-ana", "", "api")):
        placed = side.ordering.place("ana", "k", world.fridge_id, {world.soup: 1})
    follow(side, fulfilment)  # opened, money asked for
    webhook = Cause("req-webhook", "req-webhook", "req-webhook", "api")  # no correlation id sent
    with caused_by(webhook):
        take_in(side.ordering, PaymentMessage("msg-1", placed.order_id, "authorised", "psp-1"))

    events = list(side.store.events.get(Order.create_id(placed.order_id)))
    paid = [e for e in events if type(e).__qualname__ == "Order.PaymentAuthorised"]
    assert len(paid) == 1
    assert cause_of(paid[0]) == Cause("req-webhook", "checkout-ana", "req-webhook", "api")
    assert side.ordering.order(placed.order_id).status == OrderStatus.READY_FOR_PICKUP


def test_a_webhook_that_sends_its_own_correlation_id_keeps_it(
    side: WriteSide, fulfilment: Fulfilment, processor: ScriptedProcessor
) -> None:
    processor.answer = None
    world = make_world(side, soup_units=2)
    with caused_by(Cause("req-checkout", "checkout-ana", "", "api")):
        placed = side.ordering.place("ana", "k", world.fridge_id, {world.soup: 1})
    follow(side, fulfilment)
    with caused_by(Cause("req-webhook", "psp-trace-9", "req-webhook", "api")):
        take_in(side.ordering, PaymentMessage("msg-1", placed.order_id, "declined", "psp-1"))

    events = list(side.store.events.get(Order.create_id(placed.order_id)))
    failed = [e for e in events if type(e).__qualname__ == "Order.PaymentFailed"]
    causes = [cause_of(event) for event in failed]
    assert [cause.correlation_id for cause in causes if cause is not None] == ["psp-trace-9"]
