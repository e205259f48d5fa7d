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

from application.errors import NotFound
from application.payments import Authorisation, PaymentAnswer
from domain.order import OrderStatus
from ops.root import Root, WriteSide, open_database, open_event_store
from ops.settings import Settings
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
