"""Orders: each order's status and history, per order and per customer. Sharded by order.

An order's row is born with the fridge's reservation event, which carries everything the
order was promised, so an order is readable as soon as its 201 is (through its position),
before the fulfilment flow has opened its `Order`. The `Order`'s own `Placed` event then
finds the row there. Reservations recorded before orders were born in the fridge carry no
terms; their row comes from `Placed`, as it always did.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from domain.fridge import Fridge
from domain.order import Order, OrderLine
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.projection import Projection, Shard, View, handles, utc_iso

STATUS_AFTER = {
    Order.PaymentAuthorised: "paid",
    Order.ReadyForPickup: "ready_for_pickup",
    Order.PickedUp: "picked_up",
    Order.Cancelled: "cancelled",
    Order.PaymentFailed: "payment_failed",
    Order.Expired: "expired",
    Order.Refunded: "refunded",
    Order.NotCollected: "not_collected",
}

MONEY_STEPS = {
    Order.AuthorisedTooLate: "authorised_too_late",
    Order.PaymentCaptured: "payment_captured",
    Order.PaymentVoided: "payment_voided",
    Order.PaymentRefunded: "payment_refunded",
}
"""What became of an order's money: a step in its history that leaves its status as it is."""


MAX_CACHED_FRIDGES = 10_000
"""Fridges whose names the orders view keeps in memory between batches; past this, the memory
is dropped after a batch and refilled from the table as fridges come up again."""

_ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "fridge_id",
    "venue_id",
    "city_id",
    "status",
    "lines",
    "total",
    "currency",
    "placed_at",
    "payment_due_by",
    "updated_at",
)


@dataclass
class OrderChanges:
    """What a batch did to one order's row, in the three steps SQL applied one by one would
    take: a move of a row an earlier batch wrote, the first birth (inserted only if no row is
    there), and the last move after that birth (of whichever row is there by then)."""

    moved_before: tuple[str, str] | None = None  # (status, updated_at)
    born: tuple[str, ...] | None = None  # the row in `_ORDER_COLUMNS` order
    moved_after: tuple[str, str] | None = None


class OrderRows(View):
    """An order's row (status, lines, total, times) and its history, one step per version, and
    the names of every fridge (fridge events name theirs only by stream).

    A batch is kept in memory and written at `flush`, a statement or two per table: an order
    reserved, placed and moved on within one batch ends exactly as if each event had been
    written on its own. `forget` drops it all when the batch is rolled back.
    """

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._fridges: dict[str, tuple[str, str, str] | None] = {}  # stream -> names, if any
        self._new_fridges: dict[str, tuple[str, str, str]] = {}
        self._orders: dict[str, OrderChanges] = {}
        self._steps: dict[tuple[str, int], tuple[str, str, str | None]] = {}

    def forget(self) -> None:
        self._fridges.clear()
        self._new_fridges.clear()
        self._orders.clear()
        self._steps.clear()

    def fridge_installed(
        self, tx: Tx, stream: str, fridge_id: str, venue_id: str, city_id: str
    ) -> None:
        if self.fridge_named(tx, stream) is None:  # a fridge installed once keeps its names
            self._fridges[stream] = self._new_fridges[stream] = (fridge_id, venue_id, city_id)

    def fridge_named(self, tx: Tx, stream: str) -> tuple[str, str, str] | None:
        """(fridge, venue, city) of a fridge's stream, if the model has seen it installed."""
        if stream not in self._fridges:
            row = tx.one(
                f"SELECT fridge_id, venue_id, city_id FROM {self.t['fridges']} WHERE stream = ?",
                (stream,),
            )
            self._fridges[stream] = None if row is None else (row[0], row[1], row[2])
        return self._fridges[stream]

    def born(
        self,
        tx: Tx,
        who: tuple[str, str, str, str, str],  # order, customer, fridge, venue, city
        lines: list[OrderLine],
        total: Decimal,
        currency: str,
        placed_at: datetime,
        payment_due_by: datetime,
        at: datetime,
    ) -> None:
        """An order's row and its first step, once: whichever of its births comes first."""
        order = self._orders.setdefault(who[0], OrderChanges())
        if order.born is None:  # a later birth finds the first one's row there
            rows = [
                {
                    "meal_id": line["meal_id"],
                    "quantity": line["quantity"],
                    "unit_price": str(line["unit_price"]),
                }
                for line in lines
            ]
            order.born = (
                *who,
                "placed",
                json.dumps(rows),
                str(total),
                currency,
                utc_iso(placed_at),
                utc_iso(payment_due_by),
                utc_iso(at),
            )
        # The order's own stream starts at version 0 with `Placed`: that is its first step.
        self._steps.setdefault((who[0], 0), ("placed", utc_iso(at), None))

    def moved(
        self, tx: Tx, order_id: str, version: int, status: str, at: datetime, detail: str | None
    ) -> None:
        """The order moved on to `status` at its stream's `version`."""
        order = self._orders.setdefault(order_id, OrderChanges())
        when = utc_iso(at)
        if order.born is None:
            order.moved_before = (status, when)
        else:
            order.moved_after = (status, when)
        self._steps.setdefault((order_id, version), (status, when, detail))

    def noted(
        self, tx: Tx, order_id: str, version: int, step: str, at: datetime, detail: str | None
    ) -> None:
        """A step in the order's history at its stream's `version` that moves no status."""
        self._steps.setdefault((order_id, version), (step, utc_iso(at), detail))

    def flush(self, tx: Tx) -> None:
        """Write the batch: moves of earlier rows, births, later moves, steps, fridges."""
        orders = self.t["orders"]
        move = f"UPDATE {orders} SET status = ?, updated_at = ? WHERE order_id = ?"
        changes = self._orders.items()
        tx.execute_many(move, [(*o.moved_before, k) for k, o in changes if o.moved_before])
        births = [o.born for o in self._orders.values() if o.born is not None]
        if births:
            tx.insert_rows(orders, _ORDER_COLUMNS, births, "ON CONFLICT (order_id) DO NOTHING")
        tx.execute_many(move, [(*o.moved_after, k) for k, o in changes if o.moved_after])
        if self._steps:
            tx.insert_rows(
                self.t["history"],
                ("order_id", "version", "status", "at", "detail"),
                [(*key, *step) for key, step in self._steps.items()],
                "ON CONFLICT (order_id, version) DO NOTHING",
            )
        if self._new_fridges:
            tx.insert_rows(
                self.t["fridges"],
                ("stream", "fridge_id", "venue_id", "city_id"),
                [(stream, *names) for stream, names in self._new_fridges.items()],
                "ON CONFLICT (stream) DO NOTHING",
            )
        self._orders.clear()
        self._steps.clear()
        self._new_fridges.clear()
        if len(self._fridges) > MAX_CACHED_FRIDGES:
            self._fridges.clear()


class Orders(Projection):
    """Each order from its birth (the fridge's reservation, or `Placed` for older ones) through
    every step: what those events mean for `OrderRows`. Sharded by order."""

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
        # Fridge events name their fridge by stream: every shard keeps every fridge's names.
        "fridges": (
            "stream TEXT PRIMARY KEY, fridge_id TEXT NOT NULL, venue_id TEXT NOT NULL, "
            "city_id TEXT NOT NULL"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {"by_customer": "orders(customer_id, placed_at)"}

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.orders = OrderRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.orders)

    @handles(Fridge.Installed)
    def _installed(self, event: Fridge.Installed, tx: Tx, position: int) -> None:
        self.orders.fridge_installed(
            tx, str(event.originator_id), event.fridge_id, event.venue_id, event.city_id
        )

    @handles(Fridge.MealsReserved)
    def _reserved(self, event: Fridge.MealsReserved, tx: Tx, position: int) -> None:
        if event.priced_lines is None or event.total is None or not self.shard.owns(event.order_id):
            return  # reserved before orders were born in the fridge: `Placed` makes its row
        fridge = self.orders.fridge_named(tx, str(event.originator_id))
        if fridge is None:  # a model built before it kept fridges: `Placed` makes the row
            return
        self.orders.born(
            tx,
            (event.order_id, event.customer_id, *fridge),
            event.priced_lines,
            event.total,
            event.currency,
            event.reserved_at,
            event.expires_at,
            event.timestamp,
        )

    @handles(Order.Placed)
    def _placed(self, event: Order.Placed, tx: Tx, position: int) -> None:
        if not self.shard.owns(event.order_id):
            return
        self.orders.born(
            tx,
            (event.order_id, event.customer_id, event.fridge_id, event.venue_id, event.city_id),
            event.lines,
            event.total,
            event.currency,
            event.placed_at,
            event.payment_due_by,
            event.timestamp,
        )

    @handles(*STATUS_AFTER)
    def _moved(self, event: Order.Event, tx: Tx, position: int) -> None:
        order_id = str(event.originator_id)
        if not self.shard.owns(order_id):
            return
        detail = getattr(event, "reason", None)  # never the processor's reference
        self.orders.moved(
            tx,
            order_id,
            event.originator_version,
            STATUS_AFTER[type(event)],
            event.timestamp,
            detail,
        )

    @handles(*MONEY_STEPS)
    def _money(self, event: Order.Event, tx: Tx, position: int) -> None:
        order_id = str(event.originator_id)
        if not self.shard.owns(order_id):
            return
        detail = getattr(event, "reason", None)
        step = MONEY_STEPS[type(event)]
        self.orders.noted(tx, order_id, event.originator_version, step, event.timestamp, detail)


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

        return answer(
            self.db,
            Orders,
            lambda tx, view: order_by_id(tx, view, order_id),
            min_position,
            timeout,
        )

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
