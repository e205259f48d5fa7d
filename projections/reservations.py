"""Reservations: the latest status of every reservation, one row each; open ones by deadline.

The process manager reads `due(before)` to expire unpaid reservations. Sharded by fridge.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from projections import events as e
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.projection import handles, utc_iso
from projections.stock import StockKeeping


class Reservations(StockKeeping):
    """Keeps only the `fridges` table of stock keeping (to name fridges), plus reservations."""

    name = "reservations"
    tables: ClassVar[dict[str, str]] = {
        "fridges": StockKeeping.tables["fridges"],
        "reservations": (
            "fridge_id TEXT, order_id TEXT, status TEXT NOT NULL, lines TEXT NOT NULL, "
            "expires_at TEXT NOT NULL, missing BIGINT NOT NULL, updated_at TEXT NOT NULL, "
            "PRIMARY KEY (fridge_id, order_id)"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {"by_deadline": "reservations(status, expires_at)"}

    def _set(
        self,
        tx: Tx,
        event: e.ReservationConfirmed | e.ReservationReleased | e.MealsPickedUp,
        status: str,
    ) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            tx.execute(
                f"UPDATE {self.t['reservations']} SET status = ?, updated_at = ? "
                "WHERE fridge_id = ? AND order_id = ?",
                (status, utc_iso(event.timestamp), fridge.fridge_id, event.order_id),
            )

    @handles(e.MealsReserved)
    def _held(self, event: e.MealsReserved, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        tx.execute(
            f"INSERT INTO {self.t['reservations']} (fridge_id, order_id, status, lines, "
            "expires_at, missing, updated_at) VALUES (?, ?, 'held', ?, ?, 0, ?) "
            "ON CONFLICT (fridge_id, order_id) DO UPDATE SET status = 'held', "
            "lines = excluded.lines, expires_at = excluded.expires_at, missing = 0, "
            "updated_at = excluded.updated_at",
            (
                fridge.fridge_id,
                event.order_id,
                json.dumps(event.lines, sort_keys=True),
                utc_iso(event.expires_at),
                utc_iso(event.timestamp),
            ),
        )

    @handles(e.ReservationConfirmed)
    def _confirmed(self, event: e.ReservationConfirmed, tx: Tx, position: int) -> None:
        self._set(tx, event, "confirmed")

    @handles(e.ReservationReleased)
    def _released_(self, event: e.ReservationReleased, tx: Tx, position: int) -> None:
        self._set(tx, event, f"released:{event.reason}")

    @handles(e.MealsPickedUp)
    def _picked(self, event: e.MealsPickedUp, tx: Tx, position: int) -> None:
        self._set(tx, event, "picked_up")

    @handles(e.ReservedMealsMissing)
    def _missing(self, event: e.ReservedMealsMissing, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for order_id in event.order_ids:
            tx.execute(
                f"UPDATE {self.t['reservations']} SET missing = 1 WHERE fridge_id = ? "
                "AND order_id = ?",
                (fridge.fridge_id, order_id),
            )


# Only installation from stock keeping: the batch and hold handlers would need their tables.
Reservations.handlers = {
    event_type: method
    for event_type, method in Reservations.handlers.items()
    if event_type is e.FridgeInstalled
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
    """What the process manager (and the HTTP layer) asks about reservations."""

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

    def reservation(
        self,
        fridge_id: str,
        order_id: str,
        min_position: int | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> Answer[ReservationView | None]:
        def read(tx: Tx, view: Reservations) -> ReservationView | None:
            found = _views(
                tx.rows(
                    "SELECT fridge_id, order_id, status, lines, expires_at, missing FROM "
                    f"{view.t['reservations']} WHERE fridge_id = ? AND order_id = ?",
                    (fridge_id, order_id),
                )
            )
            return found[0] if found else None

        return answer(self.db, Reservations, read, min_position, timeout)
