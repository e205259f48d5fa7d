"""Operators give captured money back: `POST /orders/{order_id}/refund`, with a reason."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, post
from msgspec import Meta, Struct

from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.contract import answers
from interfaces.http.schemas import JSONBody, Write


class RefundRequest(Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=200)]


class RefundRoutes(Controller):
    path = "/orders"
    tags = ["orders"]

    @post(
        "/{order_id:str}/refund",
        guards=[allow(Role.OPERATOR)],
        status_code=200,
        responses=answers(404, 409),
    )
    async def refund(
        self, order_id: schemas.OrderInPath, data: JSONBody[RefundRequest], write: Write
    ) -> schemas.OrderMoved:
        """Refund a picked-up (or charged no-show) order's captured money, for a complaint.
        The processor returns it through the fulfilment flow; 409 if nothing was captured
        (an order not picked up is cancelled instead, and its held money voided)."""
        moved = await write.run(write.side.ordering.refund, order_id, f"operator: {data.reason}")
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)
