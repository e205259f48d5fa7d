"""Reservations: the latest status of every reservation, one row each; open ones by deadline.

The process manager reads `due(before)` to expire unpaid reservations. Sharded by fridge.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.fridge import Fridge
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.projection import Shard, View, handles, utc_iso
from projections.stock import StockKeeping

RESERVATION_TABLES = {
    "reservations": (
        "fridge_id TEXT, order_id TEXT, status TEXT NOT NULL, lines TEXT NOT NULL, "
        "expires_at TEXT NOT NULL, missing BIGINT NOT NULL, updated_at TEXT NOT NULL, "
        "PRIMARY KEY (fridge_id, order_id)"
    ),
}


_COLUMNS = ("fridge_id", "order_id", "status", "lines", "expires_at", "missing", "updated_at")


class ReservationRows(View):
    """One row per reservation: its latest status, lines, deadline and whether it went missing.

    A batch is kept in memory and written at `flush`: a reservation held in the batch is one
    whole row (holding writes every column), whatever else happens to it before or after;
    one only changed is an update of the columns changed, on whatever row an earlier batch
    left. `forget` drops it all when the batch is rolled back.
    """

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._held: dict[tuple[str, str], dict[str, Any]] = {}  # key -> the whole row
        self._changed: dict[tuple[str, str], dict[str, Any]] = {}  # key -> columns set

    def forget(self) -> None:
        self._held.clear()
        self._changed.clear()

    def held(
        self,
        tx: Tx,
        fridge_id: str,
        order_id: str,
        lines: Mapping[str, int],
        expires_at: datetime,
        at: datetime,
    ) -> None:
        """A reservation holds `lines` until `expires_at` (a new one, or held again)."""
        key = (fridge_id, order_id)
        self._changed.pop(key, None)  # every column is written again
        self._held[key] = {
            "status": "held",
            "lines": json.dumps(lines, sort_keys=True),
            "expires_at": utc_iso(expires_at),
            "missing": 0,
            "updated_at": utc_iso(at),
        }

    def set_status(self, tx: Tx, fridge_id: str, order_id: str, status: str, at: datetime) -> None:
        """confirmed, picked_up or released:<reason>, as of `at`."""
        self._columns((fridge_id, order_id)).update(status=status, updated_at=utc_iso(at))

    def missing(self, tx: Tx, fridge_id: str, order_ids: Iterable[str]) -> None:
        """The units these reservations hold are not in the fridge."""
        for order_id in order_ids:
            self._columns((fridge_id, order_id))["missing"] = 1

    def _columns(self, key: tuple[str, str]) -> dict[str, Any]:
        """The columns of a reservation the batch sets (its whole row if it was held)."""
        held = self._held.get(key)
        return held if held is not None else self._changed.setdefault(key, {})

    def flush(self, tx: Tx) -> None:
        """Write the batch: the rows held whole, then the columns changed of the others (an
        update finds no row, as before, if no batch ever held the reservation)."""
        table = self.t["reservations"]
        if self._held:
            tx.insert_rows(
                table,
                _COLUMNS,
                [(*key, *(row[c] for c in _COLUMNS[2:])) for key, row in self._held.items()],
                "ON CONFLICT (fridge_id, order_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:]),
            )
        updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for key, columns in self._changed.items():
            names = tuple(sorted(columns))
            updates.setdefault(names, []).append((*(columns[c] for c in names), *key))
        for names, rows in updates.items():
            assignments = ", ".join(f"{c} = ?" for c in names)
            tx.execute_many(
                f"UPDATE {table} SET {assignments} WHERE fridge_id = ? AND order_id = ?", rows
            )
        self._held.clear()
        self._changed.clear()


class Reservations(StockKeeping):
    """Keeps only the `fridges` table of stock keeping (to name fridges), plus reservations."""

    name = "reservations"
    tables: ClassVar[dict[str, str]] = {
        "fridges": StockKeeping.tables["fridges"],
        **RESERVATION_TABLES,
    }
    indexes: ClassVar[dict[str, str]] = {"by_deadline": "reservations(status, expires_at)"}

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.reservations = ReservationRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.reservations)

    def _set(
        self,
        tx: Tx,
        event: Fridge.ReservationConfirmed | Fridge.ReservationReleased | Fridge.MealsPickedUp,
        status: str,
    ) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.reservations.set_status(
                tx, fridge.fridge_id, event.order_id, status, event.timestamp
            )

    @handles(Fridge.MealsReserved)
    def _held(self, event: Fridge.MealsReserved, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.reservations.held(
                tx, fridge.fridge_id, event.order_id, event.lines, event.expires_at, event.timestamp
            )

    @handles(Fridge.ReservationConfirmed)
    def _confirmed(self, event: Fridge.ReservationConfirmed, tx: Tx, position: int) -> None:
        self._set(tx, event, "confirmed")

    @handles(Fridge.ReservationReleased)
    def _released_(self, event: Fridge.ReservationReleased, tx: Tx, position: int) -> None:
        self._set(tx, event, f"released:{event.reason}")

    @handles(Fridge.MealsPickedUp)
    def _picked(self, event: Fridge.MealsPickedUp, tx: Tx, position: int) -> None:
        self._set(tx, event, "picked_up")

    @handles(Fridge.ReservedMealsMissing)
    def _missing(self, event: Fridge.ReservedMealsMissing, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.reservations.missing(tx, fridge.fridge_id, event.order_ids)


# Only installation from stock keeping: the batch and hold handlers would need their tables.
Reservations.handlers = {
    event_type: method
    for event_type, method in Reservations.handlers.items()
    if event_type is Fridge.Installed
    or method in {"_held", "_confirmed", "_released_", "_picked", "_missing"}
}


@dataclass(frozen=True)
class ReservationView:
    fridge_id: str
    order_id: str
    status: str  # held, confirmed, picked_up, released:<reason>
    lines: dict[str, int]
    expires_at: str
    missing: bool


def _views(rows: list[Any]) -> list[ReservationView]:
    return [
        ReservationView(f, o, s, json.loads(lines), x, bool(m)) for f, o, s, lines, x, m in rows
    ]


class ReservationQueries:
    """What the process manager asks about reservations (ops/root.py `overdue_reservations`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def due(
        self,
        before: datetime,
        limit: int = 500,
        min_position: int | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> Answer[list[ReservationView]]:
        """Open unpaid reservations whose deadline is at or before `before`, soonest first."""

        def read(tx: Tx, view: Reservations) -> list[ReservationView]:
            return _views(
                tx.rows(
                    "SELECT fridge_id, order_id, status, lines, expires_at, missing FROM "
                    f"{view.t['reservations']} WHERE status = 'held' AND expires_at <= ? "
                    "ORDER BY expires_at, fridge_id, order_id LIMIT ?",
                    (utc_iso(before), limit),
                )
            )

        return answer(self.db, Reservations, read, min_position, timeout)
