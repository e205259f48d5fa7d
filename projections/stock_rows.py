"""The stock tables a stock-keeping view writes: fridges, their batches by best-before, and
holds by reservation, kept in memory over a batch and written once, at `flush`.

`StockKeeping` (projections/stock.py) decides what each fridge event means for these rows;
`availability` (projections/availability.py) reads them.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from domain.fridge import FridgeStatus
from domain.shelf import after_move
from projections.database import Tx
from projections.projection import View, utc_iso

STOCK_TABLES = {
    "fridges": (
        "stream TEXT PRIMARY KEY, fridge_id TEXT NOT NULL, venue_id TEXT NOT NULL, "
        "city_id TEXT NOT NULL, timezone TEXT NOT NULL, status TEXT NOT NULL, "
        "last_report_at TEXT"
    ),
    "batches": (
        "fridge_id TEXT, meal_id TEXT, best_before TEXT, units BIGINT NOT NULL, "
        "PRIMARY KEY (fridge_id, meal_id, best_before)"
    ),
    "holds": (
        "fridge_id TEXT, order_id TEXT, meal_id TEXT, units BIGINT NOT NULL, "
        "PRIMARY KEY (fridge_id, order_id, meal_id)"
    ),
}


@dataclass(frozen=True)
class FridgeRef:
    stream: str
    fridge_id: str
    venue_id: str
    city_id: str
    timezone: str


MAX_CACHED_FRIDGES = 2_000
"""Fridges whose rows a stock-keeping view keeps in memory between batches; past this, the
memory is dropped after a batch and refilled from the tables as fridges come up again."""


@dataclass
class Shelves:
    """One fridge's rows as the tables hold them once the batch's pending writes are made."""

    batches: dict[str, dict[str, int]] = field(default_factory=dict)  # meal -> best before -> units
    holds: dict[str, dict[str, int]] = field(default_factory=dict)  # order -> meal -> units


class StockRows(View):
    """The stock tables (`fridges`, `batches`, `holds`) of the shards a projection owns.

    A batch is worked out in memory and written once, at `flush`: the view keeps each fridge's
    rows it has seen (`Shelves`, read from the tables the first time a fridge comes up), changes
    them call by call exactly as the SQL would, and remembers what each changed row held
    before the batch. `flush` writes only the net difference: one multi-row upsert and one
    multi-row delete per table. A hold placed and lifted within a batch is never written;
    a batch row delivered and sold out within it neither. `forget` drops all of it when a
    batch is rolled back, so memory never runs ahead of the tables.
    """

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._fridges: dict[str, FridgeRef | None] = {}  # stream -> fridge (None: not kept)
        self._shelves: dict[str, Shelves] = {}  # fridge id -> rows (committed + pending)
        self._batches_before: dict[tuple[str, str, str], int | None] = {}  # None: no row
        self._holds_before: dict[tuple[str, str, str], int | None] = {}
        self._reported: dict[str, str] = {}  # stream -> last_report_at, to write
        self._statuses: dict[str, str] = {}  # stream -> status, to write

    def forget(self) -> None:
        self._fridges.clear()
        self._shelves.clear()
        self._batches_before.clear()
        self._holds_before.clear()
        self._reported.clear()
        self._statuses.clear()

    # ---- fridges -------------------------------------------------------------------------

    def fridge(self, tx: Tx, stream: str) -> FridgeRef | None:
        """The fridge of an event stream, if these rows keep it."""
        if stream not in self._fridges:
            row = tx.one(
                f"SELECT stream, fridge_id, venue_id, city_id, timezone FROM {self.t['fridges']} "
                "WHERE stream = ?",
                (stream,),
            )
            self._fridges[stream] = FridgeRef(*row) if row else None
        return self._fridges[stream]

    def install(self, tx: Tx, fridge: FridgeRef) -> None:
        """A fridge these rows keep, active from now."""
        self._fridges[fridge.stream] = fridge
        tx.execute(
            f"INSERT INTO {self.t['fridges']} (stream, fridge_id, venue_id, city_id, timezone, "
            "status) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stream) DO NOTHING",
            (
                fridge.stream,
                fridge.fridge_id,
                fridge.venue_id,
                fridge.city_id,
                fridge.timezone,
                FridgeStatus.ACTIVE.value,
            ),
        )

    def pass_over(self, stream: str) -> None:
        """A fridge another shard keeps: its events are not for these rows."""
        self._fridges[stream] = None

    def reported(self, fridge: FridgeRef, at: datetime) -> None:
        """The fridge's last count was taken `at`."""
        self._reported[fridge.stream] = utc_iso(at)

    def set_status(self, fridge: FridgeRef, status: FridgeStatus) -> None:
        """active, offline or retired, as the fridge's own `FridgeStatus` spells them."""
        self._statuses[fridge.stream] = status.value

    # ---- batches and holds, in memory ----------------------------------------------------

    def shelves(self, tx: Tx, fridge_id: str) -> Shelves:
        """A fridge's batches and holds, read from the tables the first time it comes up."""
        found = self._shelves.get(fridge_id)
        if found is None:
            found = Shelves()
            for meal_id, best_before, units in tx.rows(
                f"SELECT meal_id, best_before, units FROM {self.t['batches']} WHERE fridge_id = ?",
                (fridge_id,),
            ):
                found.batches.setdefault(meal_id, {})[best_before] = int(units)
            for order_id, meal_id, units in tx.rows(
                f"SELECT order_id, meal_id, units FROM {self.t['holds']} WHERE fridge_id = ?",
                (fridge_id,),
            ):
                found.holds.setdefault(order_id, {})[meal_id] = int(units)
            self._shelves[fridge_id] = found
        return found

    def batches(self, tx: Tx, fridge_id: str, meal_id: str) -> Mapping[str, int]:
        """A meal's batches in a fridge: best before -> units."""
        return self.shelves(tx, fridge_id).batches.get(meal_id, {})

    def move(self, tx: Tx, fridge_id: str, meal_id: str, moved: Mapping[str, int]) -> None:
        """Add (negative: subtract) units batch by batch; a batch left empty goes (the shelf's
        rule, `after_move`)."""
        shelves = self.shelves(tx, fridge_id)
        known = shelves.batches.get(meal_id, {})
        for best_before, left in after_move(known, moved).items():
            self._set_batch(shelves, fridge_id, meal_id, best_before, left)

    def throw_out(self, tx: Tx, fridge_id: str, meal_id: str, best_before: str) -> None:
        """A batch is gone from the fridge, whatever it held."""
        self._set_batch(self.shelves(tx, fridge_id), fridge_id, meal_id, best_before, None)

    def hold(self, tx: Tx, fridge_id: str, order_id: str, lines: Mapping[str, int]) -> None:
        """An order holds these units per meal."""
        holds = self.shelves(tx, fridge_id).holds
        for meal_id, units in lines.items():
            order = holds.setdefault(order_id, {})
            self._holds_before.setdefault((fridge_id, order_id, meal_id), order.get(meal_id))
            order[meal_id] = units

    def unhold(self, tx: Tx, fridge_id: str, order_id: str) -> None:
        """An order holds nothing any more."""
        order = self.shelves(tx, fridge_id).holds.pop(order_id, {})
        for meal_id, units in order.items():
            self._holds_before.setdefault((fridge_id, order_id, meal_id), units)

    def _set_batch(
        self, shelves: Shelves, fridge_id: str, meal_id: str, best_before: str, units: int | None
    ) -> None:
        """Set one batch row (None: remove it), remembering what it held before the batch."""
        batches = shelves.batches.setdefault(meal_id, {})
        self._batches_before.setdefault((fridge_id, meal_id, best_before), batches.get(best_before))
        if units is not None:
            batches[best_before] = units
            return
        batches.pop(best_before, None)
        if not batches:
            del shelves.batches[meal_id]

    # ---- writing the batch -------------------------------------------------------------------

    def flush(self, tx: Tx) -> None:
        """Write what the batch changed, net: each table once (deletes, then upserts)."""
        batch_rows = []
        for key, before in self._batches_before.items():
            fridge_id, meal_id, best_before = key
            after = self._shelves[fridge_id].batches.get(meal_id, {}).get(best_before)
            if after != before:
                batch_rows.append((key, after))
        hold_rows = []
        for key, before in self._holds_before.items():
            fridge_id, order_id, meal_id = key
            after = self._shelves[fridge_id].holds.get(order_id, {}).get(meal_id)
            if after != before:
                hold_rows.append((key, after))
        self._write(tx, "batches", ("fridge_id", "meal_id", "best_before"), batch_rows)
        self._write(tx, "holds", ("fridge_id", "order_id", "meal_id"), hold_rows)
        fridges = self.t["fridges"]
        tx.execute_many(
            f"UPDATE {fridges} SET last_report_at = ? WHERE stream = ?",
            [(at, stream) for stream, at in sorted(self._reported.items())],
        )
        tx.execute_many(
            f"UPDATE {fridges} SET status = ? WHERE stream = ?",
            [(status, stream) for stream, status in sorted(self._statuses.items())],
        )
        self._batches_before.clear()
        self._holds_before.clear()
        self._reported.clear()
        self._statuses.clear()
        if len(self._shelves) > MAX_CACHED_FRIDGES:
            self._shelves.clear()

    def _write(
        self,
        tx: Tx,
        short: str,
        key: tuple[str, str, str],
        changed: list[tuple[tuple[str, str, str], int | None]],
    ) -> None:
        if not changed:
            return
        changed.sort()
        gone = [row_key for row_key, units in changed if units is None]
        kept = [(*row_key, units) for row_key, units in changed if units is not None]
        table = self.t[short]
        if gone:
            tx.delete_rows(table, key, gone)
        if kept:
            tx.insert_rows(
                table,
                (*key, "units"),
                kept,
                f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET units = excluded.units",
            )
