"""The pickup deadlines the fulfilment process keeps: ready orders by the end of their window.

Not a read model built by a worker: fulfilment writes a row when an order becomes ready and
drops it when the order is picked up or its window is closed, each idempotent, before its
checkpoint moves, so a crash repeats a write and loses none. It lives in fulfilment's own
database (beside its checkpoint) and satisfies application.fulfilment.PickupDeadlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from projections.database import Database
from projections.projection import utc_iso

TABLE = "fulfilment_pickup_deadlines"


class StoredPickupDeadlines:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            tx.serialise_schema_changes()  # two processes starting at once create it once
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(order_id TEXT PRIMARY KEY, pickup_by TEXT NOT NULL)"
            )

    def keep(self, order_id: str, pickup_by: datetime) -> None:
        self.keep_all({order_id: pickup_by})

    def keep_all(self, deadlines: Mapping[str, datetime]) -> None:
        """Keep several in one transaction (a batch's, from the fulfilment flow)."""
        with self.db.transaction() as tx:
            for order_id, pickup_by in deadlines.items():
                tx.execute(
                    f"INSERT INTO {TABLE} VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING",  # noqa: S608
                    (order_id, utc_iso(pickup_by)),
                )

    def drop(self, order_id: str) -> None:
        with self.db.transaction() as tx:
            tx.execute(f"DELETE FROM {TABLE} WHERE order_id = ?", (order_id,))  # noqa: S608

    def due(self, now: datetime) -> list[str]:
        with self.db.transaction() as tx:
            rows = tx.rows(
                f"SELECT order_id FROM {TABLE} WHERE pickup_by <= ? "  # noqa: S608
                "ORDER BY pickup_by LIMIT 500",
                (utc_iso(now),),
            )
        return [str(row[0]) for row in rows]

    def count(self) -> int:
        with self.db.transaction() as tx:
            row = tx.one(f"SELECT count(*) FROM {TABLE}")  # noqa: S608
        return 0 if row is None else int(row[0])
