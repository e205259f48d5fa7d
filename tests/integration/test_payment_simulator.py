"""The HTTP adapter against the simulated processor, in this process: idempotency keys move
money once, timeouts and 5xx are retried, refusals are final, and the ledger survives the
simulator's restart."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from application.payments import Authorisation, PaymentRefused, PaymentUnavailable
from interfaces.payments.http_processor import HttpProcessor
from ops.payment_simulator.ledger import Ledger
from ops.payment_simulator.processor import Simulator, WebhookSender, behaviour_of, serve

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[tuple[HttpProcessor, Path]]:
    port, ledger = free_port(), tmp_path / "ledger.sqlite"
    stop = threading.Event()
    # webhooks go nowhere here: delivery failures are retried in the background and dropped
    simulator = Simulator(Ledger(ledger), WebhookSender("http://127.0.0.1:9/", SECRET), stall=1.5)
    thread = threading.Thread(target=serve, args=(simulator, "127.0.0.1", port, stop))
    thread.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/ledger", timeout=0.5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    adapter = HttpProcessor(
        f"http://127.0.0.1:{port}", timeout=httpx.Timeout(0.5), attempts=4, max_backoff=0.2
    )
    try:
        yield adapter, ledger
    finally:
        adapter.close()
        stop.set()
        thread.join(timeout=10)


def test_behaviour_is_chosen_by_the_cents_or_a_card_token() -> None:
    assert [behaviour_of(a) for a in ("6.50", "5.01", "5.06", "5.07")] == [
        "authorise",
        "decline",
        "fail_5xx",
        "time_out",
    ]
    assert behaviour_of("6.50", "tok_decline") == "decline"


def test_money_moves_once_per_idempotency_key_and_survives_a_restart(
    processor: tuple[HttpProcessor, Path],
) -> None:
    adapter, path = processor
    asked = Authorisation("order-1", Decimal("6.50"), "EUR", "gym-1")
    assert adapter.request_authorisation(asked) is None  # pending: the webhook answers
    assert adapter.request_authorisation(asked) is None
    adapter.capture("order-1", "ref", Decimal("6.50"), "EUR")
    adapter.capture("order-1", "ref", Decimal("6.50"), "EUR")  # a repeat after a crash
    with pytest.raises(PaymentRefused):
        adapter.void("order-1", "ref")  # captured money is refunded, never voided
    adapter.refund("order-1", "ref", Decimal("6.50"), "EUR")

    reopened = Ledger(path)  # as the simulator finds it after a restart
    try:
        payment = reopened.payment("order-1")
    finally:
        reopened.close()
    assert payment.state == "refunded"
    assert [m["kind"] for m in payment.moves] == ["authorise", "capture", "refund"]


def test_timeouts_and_5xx_are_retried_with_the_same_key(
    processor: tuple[HttpProcessor, Path],
) -> None:
    adapter, path = processor
    for order_id, amount in (("order-5xx", "5.06"), ("order-slow", "5.07")):
        adapter.request_authorisation(Authorisation(order_id, Decimal(amount), "EUR"))
    ledger = Ledger(path)
    try:
        assert ledger.payment("order-5xx").state == "authorised"
        assert ledger.payment("order-slow").state == "authorised"
        assert ledger.called("order-5xx:authorise") >= 3  # 503, then through, then ours
    finally:
        ledger.close()


def test_a_processor_that_never_answers_is_unavailable(tmp_path: Path) -> None:
    adapter = HttpProcessor(
        f"http://127.0.0.1:{free_port()}", timeout=httpx.Timeout(0.2), attempts=2, max_backoff=0.1
    )
    try:
        with pytest.raises(PaymentUnavailable):
            adapter.request_authorisation(Authorisation("order-1", Decimal("1.00"), "EUR"))
    finally:
        adapter.close()
