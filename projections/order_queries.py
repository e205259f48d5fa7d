"""What the orders model answers: an order by id, and a customer's orders newest first."""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from projections.database import Tx
from projections.freshness import Answer, Reader
from projections.orders import Orders


@dataclass(frozen=True)
class OrderView:
    order_id: str
    customer_id: str
    fridge_id: str
    venue_id: str
    status: str
    lines: list[dict[str, Any]]
    total: str
    currency: str
    placed_at: str
    payment_due_by: str
    history: list[tuple[str, str, str | None]]  # (status, at, detail)


_COLUMNS = (
    "order_id, customer_id, fridge_id, venue_id, status, lines, total, currency, placed_at, "
    "payment_due_by"
)


def _order_views(tx: Tx, view: Orders, rows: list[Any]) -> list[OrderView]:
    found = []
    for row in rows:
        history = tx.rows(
            f"SELECT status, at, detail FROM {view.t['history']} WHERE order_id = ? "
            "ORDER BY version",
            (row[0],),
        )
        order_id, customer_id, fridge_id, venue_id, status, lines, total, currency = row[:8]
        found.append(
            OrderView(
                order_id,
                customer_id,
                fridge_id,
                venue_id,
                status,
                json.loads(lines),
                total,
                currency,
                row[8],
                row[9],
                [(h[0], h[1], h[2]) for h in history],
            )
        )
    return found


def order_by_id(tx: Tx, view: Orders, order_id: str) -> OrderView | None:
    rows = tx.rows(f"SELECT {_COLUMNS} FROM {view.t['orders']} WHERE order_id = ?", (order_id,))
    found = _order_views(tx, view, rows)
    return found[0] if found else None


def orders_of_customer(
    tx: Tx, view: Orders, customer_id: str, limit: int, after: tuple[str, ...] | None = None
) -> list[OrderView]:
    """A customer's orders newest first (placed_at desc, then order id), `limit` of them
    after the cursor `after` = (placed_at, order_id) of the last one already seen."""
    if after is None:
        rows = tx.rows(
            f"SELECT {_COLUMNS} FROM {view.t['orders']} WHERE customer_id = ? "
            "ORDER BY placed_at DESC, order_id LIMIT ?",
            (customer_id, limit),
        )
    else:
        placed_at, order_id = after
        rows = tx.rows(
            f"SELECT {_COLUMNS} FROM {view.t['orders']} WHERE customer_id = ? "
            "AND (placed_at < ? OR (placed_at = ? AND order_id > ?)) "
            "ORDER BY placed_at DESC, order_id LIMIT ?",
            (customer_id, placed_at, placed_at, order_id, limit),
        )
    return _order_views(tx, view, rows)


class OrdersQueries:
    """What the API asks the orders model, through a `Reader` (its `ReadSide`)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def order(self, order_id: str, min_position: int | None = None) -> Answer[OrderView | None]:
        """GET /orders/{order_id} (the caller checks the customer)."""
        return self.reader.read(
            Orders, lambda tx, view: order_by_id(tx, view, order_id), min_position
        )

    def customer_orders(
        self,
        customer_id: str,
        limit: int = 50,
        after: tuple[str, ...] | None = None,
        min_position: int | None = None,
    ) -> Answer[list[OrderView]]:
        """GET /customers/me/orders: newest first, `limit` after the cursor `after`."""
        return self.reader.read(
            Orders,
            lambda tx, view: orders_of_customer(tx, view, customer_id, limit, after),
            min_position,
        )
