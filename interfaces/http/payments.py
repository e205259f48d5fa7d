"""The payment processor's webhook, authenticated by an HMAC-SHA256 signature of the raw body.

The processor holds no bearer token: the signature (header `X-Farmacy-Signature`, hex of
HMAC-SHA256 over the exact bytes sent, keyed with FARMACY_SECRET) is its credential. It is
checked before the body is parsed, so an unsigned request learns nothing about the schema.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from interfaces.http import schemas
from interfaces.http.contract import answers
from interfaces.http.schemas import JSONBody, Write

SIGNATURE_HEADER = "X-Farmacy-Signature"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def signed(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    request: Request[Any, Any, Any] = connection  # type: ignore[assignment]  # HTTP routes only
    signature = request.headers.get(SIGNATURE_HEADER, "")
    expected = sign(request.app.state["settings"].secret, await request.body())
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise NotAuthorizedException("bad or missing payment signature")


signed.signature = True  # type: ignore[attr-defined]  # the OpenAPI document's security


class PaymentRoutes(Controller):
    path = "/payments"
    tags = ["payments"]

    @post(
        "/webhook",
        opt={"public": True},
        guards=[signed],
        status_code=200,
        responses=answers(404, 409),
        description=f"Signed: `{SIGNATURE_HEADER}` is hex HMAC-SHA256 of the raw body.",
    )
    async def webhook(
        self, data: JSONBody[schemas.PaymentEvent], write: Write
    ) -> schemas.OrderMoved:
        if data.outcome == "authorised":
            moved = await write.run(
                write.side.ordering.authorise_payment, data.order_id, data.payment_ref
            )
        else:
            reason = f"declined ({data.payment_ref})"
            moved = await write.run(write.side.ordering.fail_payment, data.order_id, reason)
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)
