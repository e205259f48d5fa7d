"""Customers place, see and cancel their orders."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import HeaderParameter

from application.errors import NotFound
from domain.errors import SoldOut
from interfaces.http import schemas
from interfaces.http.auth import Caller, Role, allow, customer_scope
from interfaces.http.contract import answers, creates, located, repeat
from interfaces.http.operations import ORDERS_PLACED, ORDERS_SOLD_OUT
from interfaces.http.reading import ReadSide, decode_cursor, encode_cursor
from interfaces.http.schemas import After, JSONBody, Limit, MinPosition, Read, Side, Write
from interfaces.http.telemetry import note
from ops.root import WriteSide
from projections.freshness import Answer
from projections.order_queries import OrderView

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


ORDER = "/orders/{id}"
PLACE_ANSWERS = answers(404, 409) | repeat(
    schemas.OrderPlaced, "the same key and body again: the same order"
)


async def place_order(
    request: Request[Caller, Any, Any],
    write: Write,
    fridge_id: str,
    lines: list[schemas.Line],
    idempotency_key: str,
) -> Response[schemas.OrderPlaced]:
    """Both ways to place an order: 201 with `Location` for a new one, 200 for a repeat."""
    try:
        placed = await write.run(
            write.side.ordering.place,
            request.user.subject,
            idempotency_key,
            fridge_id,
            schemas.lines_of(lines),
        )
    except SoldOut:
        ORDERS_SOLD_OUT.inc()
        raise
    if placed.created:
        ORDERS_PLACED.inc()
    note(request, order_id=placed.order_id, fridge_id=fridge_id)
    body = schemas.OrderPlaced(
        placed.order_id, placed.status, str(placed.total), placed.payment_due_by, placed.position
    )
    if not placed.created:
        return Response(body, status_code=200)
    return Response(body, status_code=201, headers=located(ORDER, placed.order_id))


class OrderRoutes(Controller):
    path = "/orders"
    tags = ["orders"]

    @post(
        guards=[allow(Role.CUSTOMER)],
        description="201 for a new order; 200 with the same order when the key and body repeat.",
        responses=PLACE_ANSWERS,
        opt=creates(ORDER),
    )
    async def place(
        self,
        request: Request[Caller, Any, Any],
        data: JSONBody[schemas.PlaceOrder],
        idempotency_key: IdempotencyKey,
        write: Write,
    ) -> Response[schemas.OrderPlaced]:
        return await place_order(request, write, data.fridge_id, data.lines, idempotency_key)

    @get("/{order_id:str}", guards=[allow(Role.CUSTOMER, Role.OPERATOR)], sync_to_thread=True)
    def show(
        self,
        request: Request[Caller, Any, Any],
        order_id: schemas.OrderInPath,
        read: Read,
        side: Side,
        min_position: MinPosition = None,
    ) -> Response[schemas.OrderDetails]:
        """The order as the orders model has it; readable as soon as its 201 was answered."""
        answer = found_order(read, side, order_id, customer_scope(request.user), min_position)
        order = summary(answer.value)
        body = schemas.OrderDetails(
            **msgspec.structs.asdict(order),
            position=answer.position,
            as_of=answer.as_of,
            age_seconds=answer.age_seconds,
        )
        return Response(body, headers=private_read(answer))

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
        read: Read,
    ) -> schemas.OrderMoved:
        """Give the order up before pickup, paid or not: unpaid it is cancelled, paid it is
        refunded, and its meals go back on sale. 409 once its meals have been taken out."""
        customer = customer_scope(request.user)
        try:
            moved = await write.run(write.side.ordering.cancel, order_id, customer)
        except NotFound:
            # Placed a moment ago, its `Order` not opened yet: the model names its fridge, and
            # cancelling opens the order from the fridge's reservation first.
            placed = await anyio.to_thread.run_sync(
                partial(found_order, read, write.side, order_id, customer, None)
            )
            moved = await write.run(
                partial(write.side.ordering.cancel, fridge_id=placed.value.fridge_id),
                order_id,
                customer,
            )
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)


class FridgeOrderRoutes(Controller):
    """Orders addressed to their fridge in the path, so a load balancer hashing on the path
    sends each fridge's orders to one API process (ops/deploy/Caddyfile), whose writer then
    never loses an append to another process. Same answers and key rules as `POST /orders`."""

    path = "/fridges/{fridge_id:str}/orders"
    tags = ["orders"]

    @post(
        guards=[allow(Role.CUSTOMER)],
        description="201 for a new order; 200 with the same order when the key and body repeat.",
        responses=PLACE_ANSWERS,
        opt=creates(ORDER),
    )
    async def place(
        self,
        request: Request[Caller, Any, Any],
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.FridgeOrder],
        idempotency_key: IdempotencyKey,
        write: Write,
    ) -> Response[schemas.OrderPlaced]:
        return await place_order(request, write, fridge_id, data.lines, idempotency_key)


def private_read(answer: Answer[Any]) -> dict[str, str]:
    """Headers of a customer's own read: the position it reflects, kept by no shared cache."""
    return {"X-Read-Position": str(answer.position), "Cache-Control": "private, no-cache"}


def found_order(
    read: ReadSide,
    side: WriteSide,
    order_id: str,
    customer_id: str | None,
    min_position: int | None,
) -> Answer[OrderView]:
    """The order from the orders model, or NotFound (another customer's order included).

    Without `min_position`, a miss waits (bounded) for the model to reach everything the
    store holds before it is believed: an order acknowledged a moment ago is never a 404.
    """
    answer = read.orders.order(order_id, min_position)
    if answer.value is None and min_position is None:
        answer = read.orders.order(order_id, side.store.position())
    order = answer.value
    if order is None or (customer_id is not None and order.customer_id != customer_id):
        raise NotFound("order", order_id)
    return Answer(order, answer.position, answer.as_of)


class CustomerRoutes(Controller):
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
        answer = read.orders.customer_orders(customer, limit + 1, start, min_position)
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
        return Response(body, headers=private_read(answer))


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
        # The model keeps times as sortable text; the answer writes them as every other
        # answer does (the 201's deadline, `as_of`), so one order reads the same everywhere.
        placed_at=datetime.fromisoformat(order.placed_at),
        payment_due_by=datetime.fromisoformat(order.payment_due_by),
        history=[
            schemas.OrderStep(status, datetime.fromisoformat(at), detail)
            for status, at, detail in order.history
        ],
    )
