"""The HTTP adapter against the simulated processor, in this process: idempotency keys move
money once, timeouts and 5xx are retried, refusals are final, and the ledger survives the
simulator's restart, and so do the webhooks it had not delivered when it was killed."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from application.payments import Authorisation, PaymentRefused, PaymentUnavailable
from interfaces.payments.http_processor import HttpProcessor
from ops.payment_simulator.ledger import Ledger
from ops.payment_simulator.processor import Simulator, WebhookSender, behaviour_of, serve
from ops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

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
    kept = Ledger(ledger)
    simulator = Simulator(kept, WebhookSender("http://127.0.0.1:9/", SECRET, kept), stall=1.5)
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


class Receiver(http.server.BaseHTTPRequestHandler):
    """Farmacy's webhook, as far as a processor can tell: keeps what arrives, answers 200."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


def test_a_webhook_owed_when_the_simulator_is_killed_is_delivered_after_its_restart(
    tmp_path: Path,
) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/payments/webhook"
    port = free_port()
    settings = Settings(store="sqlite", data_dir=tmp_path, payment_webhook_secret=SECRET)

    def simulator() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", "payments", "simulate", "--port", str(port),
             "--webhook-url", webhook_url, "--delay", "3"],
            cwd=ROOT, env={**os.environ, **settings.as_env()},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    first = simulator()
    try:
        adapter = wait_for_simulator(port, first)
        adapter.request_authorisation(Authorisation("order-1", Decimal("6.50"), "EUR", "gym-1"))
        adapter.close()
    finally:
        first.send_signal(signal.SIGKILL)  # well before the webhook falls due
        first.wait()
    assert Receiver.received == []
    second = simulator()
    try:
        deadline = time.monotonic() + 20
        while not Receiver.received:
            assert second.poll() is None and time.monotonic() < deadline, "never delivered"
            time.sleep(0.05)
    finally:
        second.terminate()
        second.wait(timeout=15)
        receiver.shutdown()
    ((headers, body),) = Receiver.received
    signed = {
        name: headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    assert Webhook(SECRET).verify(body, signed)["outcome"] == "authorised"
    ledger = Ledger(settings.data_dir / "payments-simulator.sqlite")
    try:
        assert ledger.undelivered() == []  # delivered once, owed no more
        assert [w["status"] for w in ledger.payment("order-1").webhooks] == [200]
    finally:
        ledger.close()


def wait_for_simulator(port: int, process: subprocess.Popen[bytes]) -> HttpProcessor:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "the simulator exited"
        try:
            httpx.get(f"http://127.0.0.1:{port}/ledger", timeout=0.5)
            return HttpProcessor(f"http://127.0.0.1:{port}")
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the simulator did not answer"
            time.sleep(0.05)
