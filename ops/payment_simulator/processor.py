"""`farmacy payments simulate`: a payment processor of our own, as its own HTTP service.

It answers the HTTP adapter's calls (interfaces/payments/http_processor.py) the way a card
processor does: an authorisation is taken (202, pending) and its outcome arrives later
through Farmacy's webhook, signed the Standard Webhooks way with
FARMACY_PAYMENT_WEBHOOK_SECRET; capture, void and refund answer at once. Its ledger (a SQLite
file, ops/payment_simulator/ledger.py) survives a restart, and so do the webhooks it owes
(its outbox, written with the authorisation, sent again after a restart); `GET /ledger` and
`GET /ledger/{order_id}` show it.

What it does with an authorisation is chosen by the amount's cents (Farmacy holds no card
data; a caller that has a card token may send `card_token` instead, e.g. `tok_decline`):

  .01 decline          .02 answer late      .03 never answer     .04 answer twice
  .05 out of order     .06 fail with 5xx    .07 time out         anything else: authorise

"answer twice" delivers one webhook twice (same `webhook-id`); "out of order" delivers a
stale copy (another id, an older timestamp) after the fresh one; "fail with 5xx" and "time
out" do so on the first call of each idempotency key only, so the adapter's retry gets
through.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import httpx
import structlog
from litestar import Litestar, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import JSONBody, PathParameter
from standardwebhooks.webhooks import Webhook as WebhookSigner

from ops.payment_simulator.ledger import Ledger, Refused, Unknown, Webhook, payment_ref_of

log = structlog.get_logger(__name__)

InPath = Annotated[str, PathParameter(max_length=200)]
Body = JSONBody[dict[str, Any]]

BEHAVIOURS = {
    "01": "decline",
    "02": "late",
    "03": "never",
    "04": "twice",
    "05": "out_of_order",
    "06": "fail_5xx",
    "07": "time_out",
}
CARD_TOKENS = {f"tok_{name}": name for name in BEHAVIOURS.values()} | {"tok_ok": "authorise"}


def behaviour_of(amount: str, card_token: str = "") -> str:
    """What the simulator does with an authorisation of `amount` (or for `card_token`)."""
    if card_token in CARD_TOKENS:
        return CARD_TOKENS[card_token]
    try:
        cents = f"{Decimal(amount):.2f}"[-2:]
    except InvalidOperation:
        return "authorise"
    return BEHAVIOURS.get(cents, "authorise")


LANES = 8
"""Webhooks delivered side by side (a real processor does not wait for one merchant's answer
before sending the next); one order's webhooks keep to one lane, so they leave in order."""


@dataclass(order=True)
class Delivery:
    due: float  # time.monotonic()
    seq: int
    webhook: Webhook = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookSender:
    """Delivers the ledger's outbox: each signed webhook when it falls due, retrying with
    backoff until a 2xx (or until `attempts` run out), over `lanes` threads. What was still
    owed when the simulator stopped (or was killed) is sent after its restart."""

    def __init__(
        self, url: str, secret: str, ledger: Ledger, attempts: int = 8, lanes: int = LANES
    ) -> None:
        self.url = url
        self.ledger = ledger
        self.signer = WebhookSigner(secret)
        self.attempts = attempts
        self._seq = itertools.count()
        self._client = httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=lanes))
        self._lanes = [_Lane(self._deliver, f"webhooks-{n}") for n in range(lanes)]
        self.queue(ledger.undelivered())

    def queue(self, webhooks: list[Webhook]) -> None:
        """Send these webhooks (already in the ledger's outbox) when they fall due."""
        for webhook in webhooks:
            after = (webhook.due - datetime.now(UTC)).total_seconds()
            self._lane_of(webhook).put(Delivery(time.monotonic() + after, next(self._seq), webhook))

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._client.close()

    def _lane_of(self, webhook: Webhook) -> _Lane:
        return self._lanes[zlib.crc32(webhook.order_id.encode()) % len(self._lanes)]

    def _deliver(self, delivery: Delivery) -> None:
        webhook = delivery.webhook
        headers = {
            "webhook-id": webhook.webhook_id,
            "webhook-timestamp": str(int(webhook.sent_at.timestamp())),
            "webhook-signature": self.signer.sign(
                webhook.webhook_id, webhook.sent_at, webhook.body
            ),
            "content-type": "application/json",
        }
        try:
            status = self._client.post(self.url, content=webhook.body, headers=headers).status_code
        except httpx.TransportError:
            status = 0
        log.info("webhook_delivered", webhook_id=webhook.webhook_id, status=status)
        again = (status == 0 or status >= 500 or status == 429) and delivery.attempt + 1 < (
            self.attempts
        )
        self.ledger.delivered(webhook, status, final=not again)
        if again:
            delivery.attempt += 1
            delivery.due = time.monotonic() + min(0.1 * 2**delivery.attempt, 5.0)
            delivery.seq = next(self._seq)
            self._lane_of(webhook).put(delivery)


class _Lane:
    """One delivery thread and the deliveries queued for it, soonest due first."""

    def __init__(self, deliver: Callable[[Delivery], None], name: str) -> None:
        self._deliver = deliver
        self._queue: list[Delivery] = []
        self._ready = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, delivery: Delivery) -> None:
        with self._ready:
            heapq.heappush(self._queue, delivery)
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._stop = True
            self._ready.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._stop and (not self._queue or self._queue[0].due > time.monotonic()):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._ready.wait(wait)
                if self._stop:
                    return
                delivery = heapq.heappop(self._queue)
            self._deliver(delivery)


@dataclass
class Simulator:
    ledger: Ledger
    webhooks: WebhookSender
    delay: float = 0.0  # seconds before an authorisation's webhook
    late: float = 5.0  # seconds before a late one
    stall: float = 3.0  # how long a timed-out call hangs

    def authorise(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id, amount = str(body["order_id"]), str(body["amount"])
        behaviour = behaviour_of(amount, str(body.get("card_token", "")))
        first_call = self.ledger.called(key) == 1
        if behaviour == "fail_5xx" and first_call:
            return 503, {"detail": "processor unavailable, try again"}
        if behaviour == "time_out" and first_call:
            time.sleep(self.stall)  # the caller gave up already; this answer is lost
        declined = behaviour == "decline"
        state = "pending" if behaviour == "never" else "declined" if declined else "authorised"
        reason = "card declined" if declined else ""
        payment_ref = payment_ref_of(order_id)
        fridge_id = str(body.get("fridge_id", ""))
        owed = (
            []
            if behaviour == "never"
            else self._answer(behaviour, payment_ref, order_id, fridge_id, reason)
        )
        payment, queued = self.ledger.open(
            key, order_id, amount, str(body["currency"]), fridge_id, state, reason, owed
        )
        self.webhooks.queue(queued)
        return 202, {"status": "pending", "payment_ref": payment.payment_ref}

    def _answer(
        self, behaviour: str, payment_ref: str, order_id: str, fridge_id: str, reason: str
    ) -> list[Webhook]:
        """The webhooks an authorisation owes, as `behaviour` says."""
        body = json.dumps(
            {
                "type": f"payment.{'declined' if reason else 'authorised'}",
                "order_id": order_id,
                "fridge_id": fridge_id,
                "outcome": "declined" if reason else "authorised",
                "payment_ref": payment_ref,
                "reason": reason,
            }
        ).encode()
        now = datetime.now(UTC)
        due = now + timedelta(seconds=self.late if behaviour == "late" else self.delay)
        fresh = Webhook(order_id, f"msg_{uuid.uuid4().hex}", due, now, body)
        following = due + timedelta(seconds=0.05)
        if behaviour == "twice":
            return [fresh, replace(fresh, due=following)]
        if behaviour == "out_of_order":  # a stale retry of an earlier attempt, arriving last
            stale = now - timedelta(seconds=30)
            return [fresh, Webhook(order_id, f"msg_{uuid.uuid4().hex}", following, stale, body)]
        return [fresh]

    def move(self, key: str, order_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self.ledger.called(key)
        payment = self.ledger.payment(order_id)
        amount = str(body.get("amount") or payment.amount)
        return self.ledger.move(key, order_id, kind, amount).as_json()


def simulator_app(simulator: Simulator) -> Litestar:
    """The simulated processor's HTTP API."""

    def key_of(request: Request[Any, Any, Any]) -> str:
        key = request.headers.get("idempotency-key", "")
        if not key or len(key) > 200:
            raise HTTPException(status_code=400, detail="an Idempotency-Key of 1-200 characters")
        return key

    @post("/authorisations", status_code=202, sync_to_thread=True)
    def authorise(request: Request[Any, Any, Any], data: Body) -> Any:
        status, answer = simulator.authorise(key_of(request), data)
        if status != 202:
            raise HTTPException(status_code=status, detail=answer["detail"])
        return answer

    @post("/payments/{order_id:str}/{kind:str}", status_code=200, sync_to_thread=True)
    def move(request: Request[Any, Any, Any], order_id: InPath, kind: InPath, data: Body) -> Any:
        if kind not in {"capture", "void", "refund"}:
            raise NotFoundException(f"no such move: {kind}")
        try:
            return simulator.move(key_of(request), order_id, kind, data)
        except Unknown:
            raise NotFoundException(f"no payment for order {order_id}") from None
        except Refused as refused:
            raise HTTPException(status_code=409, detail=str(refused)) from None

    @get("/ledger", sync_to_thread=True)
    def ledger() -> dict[str, Any]:
        return {"payments": [p.as_json() for p in simulator.ledger.payments()]}

    @get("/ledger/{order_id:str}", sync_to_thread=True)
    def ledger_of(order_id: InPath) -> dict[str, Any]:
        try:
            return simulator.ledger.payment(order_id).as_json()
        except Unknown:
            raise NotFoundException(f"no payment for order {order_id}") from None

    def closing() -> None:
        simulator.webhooks.close()
        simulator.ledger.close()

    return Litestar(
        [authorise, move, ledger, ledger_of],
        on_shutdown=[closing],
        logging_config=None,  # the process logs as every farmacy process does (ops/logging.py)
    )


def build_simulator(
    ledger_path: Path, webhook_url: str, secret: str, delay: float = 0.0, late: float = 5.0
) -> Simulator:
    ledger = Ledger(ledger_path)
    return Simulator(ledger, WebhookSender(webhook_url, secret, ledger), delay, late)


def serve(simulator: Simulator, host: str, port: int, stop: threading.Event | None = None) -> None:
    """Serve the simulated processor until `stop` (or SIGTERM / Ctrl-C without one)."""
    import uvicorn  # the server only where one runs

    config = uvicorn.Config(
        simulator_app(simulator), host=host, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    if stop is not None:

        def stop_when_told() -> None:
            stop.wait()
            server.should_exit = True

        threading.Thread(target=stop_when_told, daemon=True).start()
    server.run()
