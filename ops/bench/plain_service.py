"""The plain service (issue 8): what a team would build instead of Farmacy's order path.

Not part of the product; `ops/bench/http.py --peer` measures Farmacy against it, same client,
same machine, same run. Litestar and psycopg (an async `psycopg_pool`), a table of stock rows
and a table of orders. `POST /orders` takes Farmacy's request body (`{"fridge_id", "lines":
[{"meal_id", "quantity"}]}`) and, in one transaction, runs per line one
`UPDATE stock SET qty = qty - n WHERE fridge_id = ... AND meal_id = ... AND qty >= n` and then
one `INSERT` into orders: 201 with the order id, or 409 when a line is sold out (nothing
changed). The bearer token is only checked to be there. Served as `farmacy api` serves:
uvicorn, uvloop, httptools, N worker processes.

For the city benchmark (`ops/bench/city.py`, issue 18) it also answers what Farmacy answers
there: `POST /fridges/{fridge_id}/orders` with `{"lines"}` (the same order, the fridge in the
path, so a load balancer can hash on it), and `GET /venues/{venue_id}/menu`, which sums the
stock rows of the venue's fridges per meal on every read (one statement; a table of fridges
says which venue each is in, a table of meals their names and prices) and answers Farmacy's
shape: `{"venue_id", "items": [{"meal_id", "name", "price", "currency", "details",
"available"}], "position", "as_of", "age_seconds"}`.

    python -m ops.bench.plain_service --dsn DSN --schema SCHEMA [--port 8001] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import msgspec
import psycopg
from litestar import Litestar, Request, Response, get, post
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

POOL_SIZE = 16
"""Connections per server process: 2 processes x 16 = 32 for 64 clients."""

TABLES = """
CREATE TABLE IF NOT EXISTS stock (
    fridge_id TEXT NOT NULL,
    meal_id TEXT NOT NULL,
    qty INTEGER NOT NULL CHECK (qty >= 0),
    PRIMARY KEY (fridge_id, meal_id)
);
CREATE TABLE IF NOT EXISTS orders (
    order_id UUID PRIMARY KEY,
    customer TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fridge_id TEXT NOT NULL,
    lines JSONB NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS fridges (
    fridge_id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fridges_by_venue ON fridges (venue_id);
CREATE TABLE IF NOT EXISTS meals (
    meal_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price NUMERIC(10, 2) NOT NULL,
    currency TEXT NOT NULL
);
"""

MENU = """
SELECT s.meal_id, m.name, m.price::text, m.currency, sum(s.qty)::bigint
FROM fridges f JOIN stock s ON s.fridge_id = f.fridge_id JOIN meals m ON m.meal_id = s.meal_id
WHERE f.venue_id = %s
GROUP BY s.meal_id, m.name, m.price, m.currency
ORDER BY s.meal_id
"""
"""A venue's menu: per meal, the units in all its fridges, summed on every read."""


class Line(msgspec.Struct, forbid_unknown_fields=True):
    meal_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class PlaceOrder(msgspec.Struct, forbid_unknown_fields=True):
    fridge_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    lines: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=20)]


class FridgeOrder(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[Line], msgspec.Meta(min_length=1, max_length=20)]


class MenuEntry(msgspec.Struct):
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int


class VenueMenu(msgspec.Struct):
    venue_id: str
    items: list[MenuEntry]
    position: int
    as_of: str | None
    age_seconds: float | None


class OrderPlaced(msgspec.Struct):
    order_id: str
    status: str


class SoldOut(Exception):
    pass


def create_tables(dsn: str, schema: str) -> None:
    """The schema and its two tables (the caller seeds the stock)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(TABLES)


def stock(
    dsn: str,
    schema: str,
    fridges: Sequence[str],
    meals: Sequence[str],
    qty: int,
    venue_of: Mapping[str, str] | None = None,
    price: str = "7.50",
) -> None:
    """One row per fridge and meal, `qty` units each; each fridge in its venue (`venue_of`,
    for the menu route) and each meal at `price` EUR."""
    create_tables(dsn, schema)
    rows = [(fridge, meal, qty) for fridge in fridges for meal in meals]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        cursor.executemany(
            "INSERT INTO stock (fridge_id, meal_id, qty) VALUES (%s, %s, %s) "
            "ON CONFLICT (fridge_id, meal_id) DO UPDATE SET qty = excluded.qty",
            rows,
        )
        cursor.executemany(
            "INSERT INTO fridges (fridge_id, venue_id) VALUES (%s, %s) "
            "ON CONFLICT (fridge_id) DO UPDATE SET venue_id = excluded.venue_id",
            [(fridge, (venue_of or {}).get(fridge, "")) for fridge in fridges],
        )
        cursor.executemany(
            "INSERT INTO meals (meal_id, name, price, currency) VALUES (%s, %s, %s, 'EUR') "
            "ON CONFLICT (meal_id) DO NOTHING",
            [(meal, meal.replace("-", " ").title(), price) for meal in meals],
        )
        cursor.execute("ANALYZE")


def create_app(dsn: str, schema: str, pool_size: int = POOL_SIZE) -> Litestar:
    pool = AsyncConnectionPool(
        dsn,
        min_size=pool_size,
        max_size=pool_size,
        kwargs={"options": f"-c search_path={schema}"},
        open=False,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    @post("/orders", status_code=201)
    async def place(request: Request[Any, Any, Any], data: PlaceOrder) -> Response[Any]:
        return await take(request, data.fridge_id, data.lines)

    @post("/fridges/{fridge_id:str}/orders", status_code=201)
    async def place_at(
        request: Request[Any, Any, Any], fridge_id: str, data: FridgeOrder
    ) -> Response[Any]:
        return await take(request, fridge_id, data.lines)

    @get("/venues/{venue_id:str}/menu")
    async def venue_menu(request: Request[Any, Any, Any], venue_id: str) -> Response[Any]:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Response({"title": "unauthorised"}, status_code=401)
        async with pool.connection() as conn:
            rows = await (await conn.execute(MENU, (venue_id,))).fetchall()
        if not rows:
            return Response({"title": "unknown venue"}, status_code=404)
        items = [
            MenuEntry(meal, name, price, currency, {}, units)
            for meal, name, price, currency, units in rows
        ]
        return Response(VenueMenu(venue_id, items, 0, None, None))

    async def take(
        request: Request[Any, Any, Any], fridge_id: str, lines: list[Line]
    ) -> Response[Any]:
        """Per line one conditional UPDATE, then the order's INSERT, in one transaction."""
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Response({"title": "unauthorised"}, status_code=401)
        order_id = uuid.uuid4()
        try:
            async with pool.connection() as conn, conn.transaction():
                for line in lines:
                    taken = await conn.execute(
                        "UPDATE stock SET qty = qty - %s "
                        "WHERE fridge_id = %s AND meal_id = %s AND qty >= %s",
                        (line.quantity, fridge_id, line.meal_id, line.quantity),
                    )
                    if taken.rowcount != 1:
                        raise SoldOut  # rolls the transaction back: nothing taken
                await conn.execute(
                    "INSERT INTO orders (order_id, customer, idempotency_key, fridge_id, lines) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (
                        order_id,
                        request.headers.get("authorization", "")[-16:],
                        request.headers.get("idempotency-key", ""),
                        fridge_id,
                        msgspec.json.encode(lines).decode(),
                    ),
                )
        except SoldOut:
            return Response({"title": "sold out"}, status_code=409)
        return Response(OrderPlaced(str(order_id), "placed"), status_code=201)

    return Litestar(route_handlers=[place, place_at, venue_menu], lifespan=[lifespan])


def app_from_env() -> Litestar:
    """One server process (uvicorn's factory): the database from the environment."""
    return create_app(
        os.environ["PLAIN_DSN"],
        os.environ["PLAIN_SCHEMA"],
        int(os.environ.get("PLAIN_POOL_SIZE", POOL_SIZE)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", type=int, default=POOL_SIZE, help="connections per process")
    args = parser.parse_args()
    os.environ.update(PLAIN_DSN=args.dsn, PLAIN_SCHEMA=args.schema, PLAIN_POOL_SIZE=str(args.pool))
    import uvicorn

    # the same flags as `farmacy api` (interfaces/cli/http.py)
    uvicorn.run(
        "ops.bench.plain_service:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
