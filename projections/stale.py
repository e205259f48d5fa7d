"""Fridges marked stale (no count for longer than the fridge cloud allows), for every stock
view: a table of their own, so views built before stale marks existed need no rebuild (the
marks are new events: there is no history to fill it from)."""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from projections.database import Tx, marks
from projections.projection import View

STALE_TABLES = {
    "stale": "stream TEXT PRIMARY KEY, fridge_id TEXT NOT NULL, since TEXT NOT NULL",
}


class StaleRows(View):
    """Which fridges are marked stale, and since when; changes kept over a batch."""

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._changes: dict[str, tuple[str, str] | None] = {}  # stream -> (fridge, since)

    def mark(self, stream: str, fridge_id: str, since: datetime) -> None:
        self._changes[stream] = (fridge_id, since.isoformat())

    def clear(self, stream: str) -> None:
        self._changes[stream] = None

    def forget(self) -> None:
        self._changes.clear()

    def flush(self, tx: Tx) -> None:
        if not self._changes:  # (the reservations model keeps no such table)
            return
        stale = self.t["stale"]
        for stream, change in sorted(self._changes.items()):
            if change is None:
                tx.execute(f"DELETE FROM {stale} WHERE stream = ?", (stream,))
            else:
                tx.execute(
                    f"INSERT INTO {stale} (stream, fridge_id, since) VALUES (?, ?, ?) "
                    "ON CONFLICT (stream) DO UPDATE SET since = excluded.since",
                    (stream, *change),
                )
        self._changes.clear()


def stale_since(tx: Tx, t: dict[str, str], fridge_id: str) -> str | None:
    row = tx.one(f"SELECT since FROM {t['stale']} WHERE fridge_id = ?", (fridge_id,))
    return None if row is None else str(row[0])


def stale_fridges(tx: Tx, t: dict[str, str], venue_ids: Sequence[str]) -> dict[str, list[str]]:
    """Each venue's fridges marked stale, by id (venues with none are left out)."""
    found: dict[str, list[str]] = {}
    for venue_id, fridge_id in tx.rows(
        f"SELECT f.venue_id, s.fridge_id FROM {t['stale']} s "
        f"JOIN {t['fridges']} f ON f.stream = s.stream "
        f"WHERE f.venue_id IN ({marks(venue_ids)}) ORDER BY s.fridge_id",
        venue_ids,
    ):
        found.setdefault(str(venue_id), []).append(str(fridge_id))
    return found
