"""The payment processor's webhook, verified the Standard Webhooks way.

The processor holds no bearer token: its signature is its credential. `webhook-id`,
`webhook-timestamp` and `webhook-signature` are checked before the body is parsed, so an
unsigned request learns nothing about the schema: the signature with the `standardwebhooks`
package, keyed with FARMACY_PAYMENT_WEBHOOK_SECRET, and the timestamp within
FARMACY_PAYMENT_WEBHOOK_TOLERANCE of now (five minutes unless set). The package fixes its
tolerance at five minutes, so the timestamp is checked here and the signature with the
package's own `sign`. What each bad webhook gets:

  bad or missing signature, stale or future timestamp -> 401, nothing changes
  a body that is not the documented shape             -> 400 or 422, nothing changes
  an order (or fridge) nobody knows                    -> 404, nothing changes
  a `webhook-id` already taken in                      -> 200 with the order as it is
  an authorisation for an order that ended             -> 200; the flow voids it

Refusals are logged with the webhook id and the reason, never with the body.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from application.payment_messages import PaymentMessage, take_in
from interfaces.http import schemas
from interfaces.http.contract import answers
from interfaces.http.schemas import JSONBody, Write

log = structlog.get_logger(__name__)

WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SIGNATURE_HEADER = "webhook-signature"


def verify(
    secret: str, body: bytes, headers: dict[str, str], tolerance: timedelta, now: datetime
) -> None:
    """Standard Webhooks' check, with a timestamp `tolerance` of our choosing either side of
    `now`: WebhookVerificationError saying what is wrong."""
    message_id, stamp, signatures = (headers.get(name, "") for name in WEBHOOK_HEADERS)
    if not (message_id and stamp and signatures):
        raise WebhookVerificationError("Missing required headers")
    try:
        at = datetime.fromtimestamp(int(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookVerificationError("Invalid Signature Headers") from None
    if at < now - tolerance:
        raise WebhookVerificationError("Message timestamp too old")
    if at > now + tolerance:
        raise WebhookVerificationError("Message timestamp too new")
    expected = Webhook(secret).sign(message_id, at, body).encode()
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures.split(" ")):
        raise WebhookVerificationError("No matching signature found")


async def signed(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]  # HTTP routes only
    headers = {name: request.headers.get(name, "") for name in WEBHOOK_HEADERS}
    settings = request.app.state["settings"]
    try:
        verify(
            settings.payment_webhook_secret,
            await request.body(),
            headers,
            settings.payment_webhook_tolerance,
            datetime.now(UTC),
        )
    except WebhookVerificationError as refused:
        log.warning("payment_webhook_refused", webhook_id=headers["webhook-id"], why=str(refused))
        raise NotAuthorizedException(f"payment webhook refused: {refused}") from None


signed.signature = True  # type: ignore[attr-defined]  # the OpenAPI document's security


class PaymentRoutes(Controller):
    path = "/payments"
    tags = ["payments"]

    @post(
        "/webhook",
        opt={"public": True},
        guards=[signed],
        status_code=200,
        responses=answers(404),
        description="Standard Webhooks: `webhook-id`, `webhook-timestamp` and "
        "`webhook-signature` (v1, HMAC-SHA256 keyed with the payment webhook secret). "
        "Idempotent on `webhook-id`; a message for an order not yet opened opens it first.",
    )
    async def webhook(
        self, request: Request[Any, Any, Any], data: JSONBody[schemas.PaymentEvent], write: Write
    ) -> schemas.OrderMoved:
        message = PaymentMessage(
            message_id=request.headers["webhook-id"],
            order_id=data.order_id,
            outcome=data.outcome,
            payment_ref=data.payment_ref,
            fridge_id=data.fridge_id,
            reason=data.reason,
        )
        with structlog.contextvars.bound_contextvars(
            order_id=data.order_id, webhook_id=message.message_id
        ):
            moved = await write.run(take_in, write.side.ordering, message)
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)


def signed_headers(
    secret: str, body: bytes, message_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers a processor sends with `body` (for tests and tools)."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }
