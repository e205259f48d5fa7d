"""The orders model's rows, kept in memory over a batch and written at `flush`: each order's
row, its history (one step per version) and the names of every fridge.

`Orders` (projections/orders.py) decides what each event means for them; the reads are in
projections/order_queries.py.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.order import OrderLine
from projections.database import Tx
from projections.projection import View, utc_iso

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
