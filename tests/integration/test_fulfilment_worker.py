"""The fulfilment worker on each store: orders are carried on without anyone calling a service.

The worker and the reservations projection run as they do in production (their own loops,
their own connections), here in threads of the test process. Waits poll the order's state
with a deadline; nothing sleeps to paper over a race.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from application.errors import NotFound
from application.follow import Act
from application.fulfilment import Fulfilment
from application.fulfilment_runner import EXPIRY_TICK_SECONDS, run_fulfilment
from application.payments import Authorisation, PaymentAnswer
from domain.order import OrderStatus
from ops.root import (
    Root,
    WriteSide,
    close_databases,
    open_database,
    open_databases,
    open_event_store,
    overdue_reservations,
)
from ops.settings import Settings
from projections.pickup_deadlines import StoredPickupDeadlines
from projections.reservations import Reservations
from projections.runner import Runner
from tests.conftest import FakeClock
from tests.integration.world import make_world
from tests.payment_fakes import AlwaysAuthorise


class NeverAnswers(AlwaysAuthorise):
    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        return None


@contextmanager
def running(target: Callable[[threading.Event], None], count: int = 1) -> Iterator[None]:
    stop = threading.Event()
    failures: list[BaseException] = []

    def guarded() -> None:
        try:
            target(stop)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    except AssertionError as failed:
        stop.set()
        raise AssertionError(f"{failed}; the workers failed with {failures!r}") from failed
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []


def eventually(side: WriteSide, order_id: str, status: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if side.ordering.order(order_id).status == status:
                return
        except NotFound:  # the worker has not opened the order from its reservation yet
            pass
        assert time.monotonic() < deadline, f"order {order_id} never became {status}"
        time.sleep(0.01)


def test_the_worker_takes_payment_and_makes_orders_ready(
    side: WriteSide, store_settings: Settings, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=3)
    first = side.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})

    # Two workers: one active, one standing by; the order is fulfilled exactly as with one.
    def fulfil(stop: threading.Event) -> list[str]:
        return Root(store_settings, clock=clock, payments=AlwaysAuthorise()).run("fulfilment", stop)

    with running(fulfil, 2):
        eventually(side, first.order_id, OrderStatus.READY_FOR_PICKUP)
        later = side.ordering.place("bob", "k2", world.fridge_id, {world.soup: 1})
        eventually(side, later.order_id, OrderStatus.READY_FOR_PICKUP)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert all(fridge.reservation_status(o) == "confirmed" for o in fridge.open_orders())
    assert side.ordering.order(first.order_id).version == 2  # paid once, ready once


def test_the_worker_expires_orders_nobody_paid_for(
    side: WriteSide, store_settings: Settings, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})

    def reservations(stop: threading.Event) -> None:
        assert Root(store_settings).run("worker", stop, names=["reservations"]) == []

    def fulfil(stop: threading.Event) -> None:
        Root(store_settings, clock=clock, payments=NeverAnswers()).run("fulfilment", stop)

    with running(reservations), running(fulfil):
        clock.advance(minutes=11)
        try:
            eventually(side, placed.order_id, OrderStatus.EXPIRED)
        except AssertionError as late:
            status = shard_statuses_of(store_settings)
            raise AssertionError(f"{late}; reservations model: {status}") from late
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.available(world.soup, fridge.today(clock.now)) == 2


def shard_statuses_of(settings: Settings) -> object:
    """What `farmacy projections status` would say of the reservations model (diagnostics)."""
    from projections.status import shard_statuses

    store, db = open_event_store(settings), open_database(settings, "reservations")
    try:
        return shard_statuses(store, db, "reservations")
    finally:
        db.close()
        store.close()


@dataclass
class TickByHand:
    """The trail machinery as fulfilment is handed it, except that the test says when a
    batch is acted on and when the tick comes: `act(batch)` and `tick()`."""

    act: Act | None = None
    tick: Callable[[], None] = lambda: None
    every: float = 0.0

    def __call__(
        self,
        name: str,
        act: Act,
        stop: threading.Event,
        *,
        transient: tuple[type[Exception], ...] = (),
        batch_size: int = 100,
        tick: tuple[float, Callable[[], None]] | None = None,
    ) -> None:
        assert tick is not None
        self.act, (self.every, self.tick) = act, tick


class AnswersOnly(AlwaysAuthorise):
    """Authorises the orders it is told to; the others never hear back."""

    def __init__(self, answered: set[str]) -> None:
        super().__init__()
        self.answered = answered

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        if request.order_id not in self.answered:
            return None
        return super().request_authorisation(request)


def test_no_reservation_outlives_its_deadline_by_more_than_one_tick(
    side: WriteSide, store_settings: Settings, clock: FakeClock
) -> None:
    """At every tick of the fulfilment process, each reservation whose payment deadline or
    pickup window has passed by the process's clock is released, and none other: so none
    outlives its deadline by more than one tick (EXPIRY_TICK_SECONDS), plus the reservations
    model's lag behind the store."""
    world = make_world(side, soup_units=4)
    first = side.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})
    paid = side.ordering.place("bob", "k2", world.fridge_id, {world.soup: 1}).order_id
    clock.advance(minutes=5)
    last = side.ordering.place("carol", "k3", world.fridge_id, {world.soup: 1})
    soon, later = first.order_id, last.order_id
    dbs = open_databases(store_settings, ["reservations", "pickup_deadlines"], pool_size=2)
    reservations, windows = dbs["reservations"], dbs["pickup_deadlines"]
    by_hand = TickByHand()
    try:
        fulfilment = Fulfilment(side.ordering, AnswersOnly({paid}), StoredPickupDeadlines(windows))
        run_fulfilment(
            fulfilment, by_hand, overdue_reservations(reservations), clock, threading.Event()
        )
        model = Runner(side.store, reservations, lambda g, s: Reservations(g, s))
        acted = 0

        def tick_at(moment: datetime) -> dict[str, str | None]:
            """Act on everything new, let the model catch up, set the clock, tick once: what
            became of each reservation."""
            nonlocal acted
            assert by_hand.act is not None
            while fresh := side.store.recorder.select_notifications(
                start=acted, limit=100, inclusive_of_start=False
            ):
                by_hand.act([(side.store.mapper.to_domain_event(n), n.id) for n in fresh])
                acted = fresh[-1].id
            model.catch_up()
            clock.now = moment
            by_hand.tick()
            side.writer.forget(world.fridge_id)
            fridge = side.catalogue.fridge(world.fridge_id)
            return {o: fridge.reservation_status(o) for o in (soon, paid, later)}

        assert tick_at(first.payment_due_by - timedelta(seconds=1))[soon] == "held"  # not yet
        after = tick_at(first.payment_due_by)
        assert (after[soon], after[paid], after[later]) == ("expired", "confirmed", "held")
        pickup_by = side.ordering.order(paid).pickup_by
        assert pickup_by is not None
        assert tick_at(pickup_by - timedelta(seconds=1))[paid] == "confirmed"
        assert tick_at(pickup_by)[paid] == "not_collected"
        assert tick_at(last.payment_due_by) == {
            soon: "expired",
            paid: "not_collected",
            later: "expired",
        }
        assert by_hand.every == EXPIRY_TICK_SECONDS
    finally:
        close_databases(dbs)
