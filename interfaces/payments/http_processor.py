"""The payment port's HTTP adapter: a real processor's API, reached with httpx.

Every call carries `Idempotency-Key: <order id>:<step>`, so a call repeated (by this adapter's
retries, or by the fulfilment flow after a crash) moves the money once. A timeout, a dropped
connection or a 5xx is retried with jittered exponential backoff; when the retries run out the
call raises PaymentUnavailable and the flow tries the step again later. A 4xx is final
(PaymentRefused). Nothing here logs a body: the processor's answers name no card data, but
the habit keeps it that way.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import structlog
from prometheus_client import Counter, Histogram
from tenacity import (
    RetryError,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from application.payments import (
    Authorisation,
    PaymentAnswer,
    PaymentOutcome,
    PaymentRefused,
    PaymentUnavailable,
    key,
)

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(2.0, connect=1.0)
ATTEMPTS = 4

# "operation" is the step of the idempotency key: authorise, capture, void, refund.
CALLS = Counter(
    "farmacy_payment_calls",
    "Calls to the payment processor, by outcome: ok, refused (a 4xx, final), unavailable "
    "(no answer after every retry; fulfilment tries the step again later) or error",
    ["operation", "outcome"],
)
ATTEMPTS_RETRIED = Counter(
    "farmacy_payment_attempts_retried",
    "Attempts of a call that failed in transit or with a 5xx/429, and were tried again or gave up",
    ["operation"],
)
CALL_SECONDS = Histogram(
    "farmacy_payment_call_duration_seconds",
    "A call to the payment processor, retries included, in seconds",
    ["operation"],
)


class _Retry(Exception):
    """A transient failure, worth another attempt."""


class HttpProcessor:
    """The processor at `base_url` (the simulator's API has the same shape)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = TIMEOUT,
        attempts: int = ATTEMPTS,
        max_backoff: float = 2.0,
    ) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=timeout)
        self._call = retry(
            retry=retry_if_exception_type(_Retry),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.05, max=max_backoff) + wait_random(0, 0.05),
            reraise=False,
        )(self._once)

    def close(self) -> None:
        self.client.close()

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        answer = self._post(
            "/authorisations",
            key(request.order_id, "authorise"),
            {
                "order_id": request.order_id,
                "amount": str(request.amount),
                "currency": request.currency,
                "fridge_id": request.fridge_id,
            },
        )
        status = answer.get("status")
        if status == "pending":
            return None  # the answer comes by webhook
        outcome = PaymentOutcome.AUTHORISED if status == "authorised" else PaymentOutcome.DECLINED
        return PaymentAnswer(outcome, str(answer.get("payment_ref", "")), answer.get("reason", ""))

    def capture(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        body = {"payment_ref": payment_ref, "amount": str(amount), "currency": currency}
        self._post(f"/payments/{order_id}/capture", key(order_id, "capture"), body)

    def void(self, order_id: str, payment_ref: str) -> None:
        self._post(
            f"/payments/{order_id}/void", key(order_id, "void"), {"payment_ref": payment_ref}
        )

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        body = {"payment_ref": payment_ref, "amount": str(amount), "currency": currency}
        self._post(f"/payments/{order_id}/refund", key(order_id, "refund"), body)

    def _post(self, path: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        operation = idempotency_key.rpartition(":")[2]
        outcome = "error"  # unless one of the below: an answer we could not read
        started = time.perf_counter()
        try:
            answer: dict[str, Any] = self._call(path, idempotency_key, body)
            outcome = "ok"
        except RetryError as gave_up:
            outcome = "unavailable"
            log.warning("payment_processor_unavailable", path=path, key=idempotency_key)
            raise PaymentUnavailable(f"{path}: no answer from the processor") from gave_up
        except PaymentRefused:
            outcome = "refused"
            raise
        finally:
            CALLS.labels(operation, outcome).inc()
            CALL_SECONDS.labels(operation).observe(time.perf_counter() - started)
        return answer

    def _once(self, path: str, idempotency_key: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post(
                path, json=body, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.TransportError as error:  # timeouts, refused and dropped connections
            ATTEMPTS_RETRIED.labels(idempotency_key.rpartition(":")[2]).inc()
            raise _Retry(type(error).__name__) from error
        if response.status_code >= 500 or response.status_code == 429:
            ATTEMPTS_RETRIED.labels(idempotency_key.rpartition(":")[2]).inc()
            raise _Retry(str(response.status_code))
        if response.status_code >= 400:
            detail = response.json().get("detail", "") if _is_json(response) else ""
            raise PaymentRefused(f"{path}: {response.status_code} {detail}".strip())
        answer: dict[str, Any] = response.json()
        return answer


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")
