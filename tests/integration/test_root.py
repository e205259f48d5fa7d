"""The composition root's parts can be replaced: a process runs on the fakes it is handed."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from application.errors import NotFound
from application.payments import Authorisation, PaymentAnswer, PaymentOutcome
from domain.order import OrderStatus
from ops.root import Root, WriteSide
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import make_world
from tests.payment_fakes import AlwaysAuthorise


class Declines(AlwaysAuthorise):
    """A payment processor that declines every payment, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Decimal, str]] = []

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        self.asked.append((request.order_id, request.amount, request.currency))
        return PaymentAnswer(PaymentOutcome.DECLINED, "", reason="card declined")


def test_fulfilment_runs_on_the_payments_clock_and_store_it_is_handed(
    side: WriteSide, store_settings: Settings, clock: FakeClock
) -> None:
    world = make_world(side, soup_units=2)
    placed = side.ordering.place("alice", "k", world.fridge_id, {world.soup: 2})
    payments = Declines()
    root = Root(store_settings, clock=clock, payments=payments, store=side.store)
    stop = threading.Event()
    failures: list[BaseException] = []

    def fulfil() -> None:
        try:
            root.run("fulfilment", stop)
        except BaseException as error:
            failures.append(error)

    worker = threading.Thread(target=fulfil, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not payments.asked or _status(side, placed.order_id) != OrderStatus.PAYMENT_FAILED:
            assert time.monotonic() < deadline, f"fulfilment never declined; {failures!r}"
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert failures == []
    assert payments.asked == [(placed.order_id, Decimal("13.00"), "EUR")]
    # the store was the test's: the root used it and left it open
    assert side.ordering.order(placed.order_id).status == OrderStatus.PAYMENT_FAILED
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.available(world.soup, fridge.today(clock.now)) == 2


def _status(side: WriteSide, order_id: str) -> str | None:
    try:
        return str(side.ordering.order(order_id).status)
    except NotFound:  # fulfilment has not opened the order yet
        return None
