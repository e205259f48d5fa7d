"""Customers place, see and cancel their orders."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import HeaderParameter

from domain.errors import SoldOut
from domain.order import Order
from interfaces.http import schemas
from interfaces.http.auth import Caller, Role, allow, customer_scope
from interfaces.http.contract import answers, repeat
from interfaces.http.logs import note
from interfaces.http.operations import ORDERS_PLACED, ORDERS_SOLD_OUT
from interfaces.http.reading import decode_cursor, encode_cursor
from interfaces.http.schemas import After, JSONBody, Limit, MinPosition, Read, Side, Write
from projections.orders import Orders as OrdersView
from projections.orders import OrderView, orders_of_customer

IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="the same key and body place the same order once; the same key with "
        "another body is refused (422)",
    ),
]


class Orders(Controller):
    path = "/orders"
    tags = ["orders"]

    @post(
        guards=[allow(Role.CUSTOMER)],
        description="201 for a new order; 200 with the same order when the key and body repeat.",
        responses=answers(404, 409)
        | repeat(schemas.OrderPlaced, "the same key and body again: the same order"),
    )
    async def place(
        self,
        request: Request[Caller, Any, Any],
        data: JSONBody[schemas.PlaceOrder],
        idempotency_key: IdempotencyKey,
        write: Write,
    ) -> Response[schemas.OrderPlaced]:
        lines = schemas.lines_of(data.lines)
        try:
            placed = await write.run(
                write.side.ordering.place,
                request.user.subject,
                idempotency_key,
                data.fridge_id,
                lines,
            )
        except SoldOut:
            ORDERS_SOLD_OUT.inc()
            raise
        if placed.created:
            ORDERS_PLACED.inc()
        note(request, order_id=placed.order_id, fridge_id=data.fridge_id)
        body = schemas.OrderPlaced(
            placed.order_id,
            placed.status,
            str(placed.total),
            placed.payment_due_by,
            placed.position,
        )
        return Response(body, status_code=201 if placed.created else 200)

    @get("/{order_id:str}", guards=[allow(Role.CUSTOMER, Role.OPERATOR)], sync_to_thread=True)
    def show(
        self, request: Request[Caller, Any, Any], order_id: schemas.OrderInPath, side: Side
    ) -> schemas.OrderDetails:
        return details(side.ordering.order(order_id, customer_scope(request.user)))

    @post(
        "/{order_id:str}/cancel",
        guards=[allow(Role.CUSTOMER, Role.OPERATOR)],
        status_code=200,
        responses=answers(409),
    )
    async def cancel(
        self,
        request: Request[Caller, Any, Any],
        order_id: schemas.OrderInPath,
        write: Write,
    ) -> schemas.OrderMoved:
        moved = await write.run(write.side.ordering.cancel, order_id, customer_scope(request.user))
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)


def details(order: Order) -> schemas.OrderDetails:
    return schemas.OrderDetails(
        order_id=order.order_id,
        status=str(order.status),
        fridge_id=order.fridge_id,
        venue_id=order.venue_id,
        lines=[
            schemas.PricedLine(line["meal_id"], line["quantity"], str(line["unit_price"]))
            for line in order.lines
        ],
        total=str(order.total),
        currency=order.currency,
        placed_at=order.placed_at,
        payment_due_by=order.payment_due_by,
    )


class Customers(Controller):
    path = "/customers/me"
    tags = ["orders"]
    guards = [allow(Role.CUSTOMER)]

    @get("/orders", sync_to_thread=True)
    def my_orders(
        self,
        request: Request[Caller, Any, Any],
        read: Read,
        min_position: MinPosition = None,
        limit: Limit = 20,
        after: After = None,
    ) -> Response[schemas.CustomerOrders]:
        """The caller's own orders, newest first, with each order's history."""
        start = decode_cursor(after, 2)
        customer = request.user.subject
        answer = read.read(
            OrdersView,
            lambda tx, view: orders_of_customer(tx, view, customer, limit + 1, start),
            min_position,
        )
        orders: list[OrderView] = answer.value
        more = len(orders) > limit
        orders = orders[:limit]
        next_cursor = encode_cursor(orders[-1].placed_at, orders[-1].order_id) if more else None
        body = schemas.CustomerOrders(
            items=[summary(order) for order in orders],
            next=next_cursor,
            position=answer.position,
            as_of=answer.as_of,
            age_seconds=answer.age_seconds,
        )
        headers = {"X-Read-Position": str(answer.position), "Cache-Control": "private, no-cache"}
        return Response(body, headers=headers)


def summary(order: OrderView) -> schemas.OrderSummary:
    return schemas.OrderSummary(
        order_id=order.order_id,
        status=order.status,
        fridge_id=order.fridge_id,
        venue_id=order.venue_id,
        lines=[
            schemas.PricedLine(line["meal_id"], line["quantity"], line["unit_price"])
            for line in order.lines
        ],
        total=order.total,
        currency=order.currency,
        placed_at=order.placed_at,
        payment_due_by=order.payment_due_by,
        history=[schemas.OrderStep(status, at, detail) for status, at, detail in order.history],
    )
