"""Orders: each order's status and history, per order and per customer. Sharded by order."""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from projections import events as e
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.projection import Projection, handles, utc_iso

STATUS_AFTER = {
    e.PaymentAuthorised: "paid",
    e.ReadyForPickup: "ready_for_pickup",
    e.OrderPickedUp: "picked_up",
    e.OrderCancelled: "cancelled",
    e.PaymentFailed: "payment_failed",
    e.OrderExpired: "expired",
    e.OrderRefunded: "refunded",
}


class Orders(Projection):
    name = "orders"
    tables: ClassVar[dict[str, str]] = {
        "orders": (
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, fridge_id TEXT NOT NULL, "
            "venue_id TEXT NOT NULL, city_id TEXT NOT NULL, status TEXT NOT NULL, "
            "lines TEXT NOT NULL, total TEXT NOT NULL, currency TEXT NOT NULL, "
            "placed_at TEXT NOT NULL, payment_due_by TEXT NOT NULL, updated_at TEXT NOT NULL"
        ),
        "history": (
            "order_id TEXT, version BIGINT, status TEXT NOT NULL, at TEXT NOT NULL, "
            "detail TEXT, PRIMARY KEY (order_id, version)"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {"by_customer": "orders(customer_id, placed_at)"}

    @handles(e.OrderPlaced)
    def _placed(self, event: Any, tx: Tx, position: int) -> None:
        if not self.shard.owns(event.order_id):
            return
        lines = [
            {
                "meal_id": line["meal_id"],
                "quantity": line["quantity"],
                "unit_price": str(line["unit_price"]),
            }
            for line in event.lines
        ]
        at = utc_iso(event.timestamp)
        tx.execute(
            f"INSERT INTO {self.t['orders']} (order_id, customer_id, fridge_id, venue_id, "
            "city_id, status, lines, total, currency, placed_at, payment_due_by, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'placed', ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
            (
                event.order_id,
                event.customer_id,
                event.fridge_id,
                event.venue_id,
                event.city_id,
                json.dumps(lines),
                str(event.total),
                event.currency,
                utc_iso(event.placed_at),
                utc_iso(event.payment_due_by),
                at,
            ),
        )
        self._history(tx, event, "placed", None)

    @handles(*STATUS_AFTER)
    def _moved(self, event: Any, tx: Tx, position: int) -> None:
        order_id = str(event.originator_id)
        if not self.shard.owns(order_id):
            return
        status = STATUS_AFTER[type(event)]
        tx.execute(
            f"UPDATE {self.t['orders']} SET status = ?, updated_at = ? WHERE order_id = ?",
            (status, utc_iso(event.timestamp), order_id),
        )
        detail = getattr(event, "reason", None) or getattr(event, "payment_ref", None)
        self._history(tx, event, status, detail)

    def _history(self, tx: Tx, event: Any, status: str, detail: str | None) -> None:
        tx.execute(
            f"INSERT INTO {self.t['history']} (order_id, version, status, at, detail) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id, version) DO NOTHING",
            (
                str(event.originator_id),
                event.originator_version,
                status,
                utc_iso(event.timestamp),
                detail,
            ),
        )


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


class OrdersQueries:
    """What the HTTP layer asks the orders model."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def order(
        self, order_id: str, min_position: int | None = None, timeout: float = WAIT_TIMEOUT
    ) -> Answer[OrderView | None]:
        """GET /orders/{order_id} (the caller checks the customer)."""

        def read(tx: Tx, view: Orders) -> OrderView | None:
            rows = tx.rows(
                f"SELECT {_COLUMNS} FROM {view.t['orders']} WHERE order_id = ?", (order_id,)
            )
            found = _order_views(tx, view, rows)
            return found[0] if found else None

        return answer(self.db, Orders, read, min_position, timeout)

    def customer_orders(
        self,
        customer_id: str,
        limit: int = 50,
        after: tuple[str, ...] | None = None,
        min_position: int | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> Answer[list[OrderView]]:
        """GET /customers/me/orders: newest first, `limit` after the cursor `after`."""
        return answer(
            self.db,
            Orders,
            lambda tx, view: orders_of_customer(tx, view, customer_id, limit, after),
            min_position,
            timeout,
        )


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
