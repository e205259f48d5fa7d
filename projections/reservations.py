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


class ReservationRows(View):
    """One row per reservation: its latest status, lines, deadline and whether it went missing."""

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
        tx.execute(
            f"INSERT INTO {self.t['reservations']} (fridge_id, order_id, status, lines, "
            "expires_at, missing, updated_at) VALUES (?, ?, 'held', ?, ?, 0, ?) "
            "ON CONFLICT (fridge_id, order_id) DO UPDATE SET status = 'held', "
            "lines = excluded.lines, expires_at = excluded.expires_at, missing = 0, "
            "updated_at = excluded.updated_at",
            (
                fridge_id,
                order_id,
                json.dumps(lines, sort_keys=True),
                utc_iso(expires_at),
                utc_iso(at),
            ),
        )

    def set_status(self, tx: Tx, fridge_id: str, order_id: str, status: str, at: datetime) -> None:
        """confirmed, picked_up or released:<reason>, as of `at`."""
        tx.execute(
            f"UPDATE {self.t['reservations']} SET status = ?, updated_at = ? "
            "WHERE fridge_id = ? AND order_id = ?",
            (status, utc_iso(at), fridge_id, order_id),
        )

    def missing(self, tx: Tx, fridge_id: str, order_ids: Iterable[str]) -> None:
        """The units these reservations hold are not in the fridge."""
        for order_id in order_ids:
            tx.execute(
                f"UPDATE {self.t['reservations']} SET missing = 1 WHERE fridge_id = ? "
                "AND order_id = ?",
                (fridge_id, order_id),
            )


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
