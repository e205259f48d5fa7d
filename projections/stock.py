"""Stock as the fridges keep it, in rows: batches by best-before and holds by reservation.

The rules mirror `domain.fridge` exactly: a delivery adds to its best-before batch; a count's
shortfall is taken oldest batch first and its surplus joins the newest batch (or, with none,
a batch of the count's day); expired batches are removed; a reservation holds units until it
is released or picked up, and a pickup takes units oldest first among the batches still fresh
on its local day (expired ones stay for `discard_expired`). What can be sold depends on
the day, so `available = max(0, fresh on hand - held)` is worked out when a query asks.

Fridge events after `Installed` carry only the stream id: the `fridges` table (and a cache of
it) maps it to the fridge, venue and city, and decides which shard a fridge belongs to.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from projections import events as e
from projections.database import Tx
from projections.projection import Projection, handles, utc_iso

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


def local_day(moment: datetime, timezone: str) -> date:
    """The fridge's local date: best-before dates are local dates."""
    return moment.astimezone(ZoneInfo(timezone)).date()


class StockKeeping(Projection):
    """A projection that keeps fridges' batches and holds (for the shards it owns)."""

    tables: ClassVar[dict[str, str]] = dict(STOCK_TABLES)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fridges: dict[str, FridgeRef | None] = {}

    def shard_key(self, fridge: FridgeRef) -> str:
        """What this model shards fridges by (the fridge unless a subclass says otherwise)."""
        return fridge.fridge_id

    def forget(self) -> None:
        self._fridges.clear()

    def fridge(self, tx: Tx, event: Any) -> FridgeRef | None:
        """The fridge an event belongs to, if this shard keeps it."""
        stream = str(event.originator_id)
        if stream not in self._fridges:
            row = tx.one(
                f"SELECT stream, fridge_id, venue_id, city_id, timezone FROM {self.t['fridges']} "
                "WHERE stream = ?",
                (stream,),
            )
            self._fridges[stream] = FridgeRef(*row) if row else None
        return self._fridges[stream]

    # ---- handlers ------------------------------------------------------------------------

    @handles(e.FridgeInstalled)
    def _installed(self, event: Any, tx: Tx, position: int) -> None:
        ref = FridgeRef(
            str(event.originator_id), event.fridge_id, event.venue_id, event.city_id, event.timezone
        )
        if not self.shard.owns(self.shard_key(ref)):
            self._fridges[ref.stream] = None
            return
        self._fridges[ref.stream] = ref
        tx.execute(
            f"INSERT INTO {self.t['fridges']} (stream, fridge_id, venue_id, city_id, timezone, "
            "status) VALUES (?, ?, ?, ?, ?, 'active') ON CONFLICT (stream) DO NOTHING",
            (ref.stream, ref.fridge_id, ref.venue_id, ref.city_id, ref.timezone),
        )

    @handles(e.MealsDelivered)
    def _delivered(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for meal_id, units in event.lines.items():
            self.add(tx, fridge.fridge_id, meal_id, event.best_before.isoformat(), units)

    @handles(e.CountsReported)
    def _counted(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            tx.execute(
                f"UPDATE {self.t['fridges']} SET last_report_at = ? WHERE stream = ?",
                (utc_iso(event.taken_at), fridge.stream),
            )

    @handles(e.StockAdjusted)
    def _adjusted(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for meal_id, difference in event.differences.items():
            if difference < 0:
                self.take(tx, fridge.fridge_id, meal_id, -difference)
                continue
            newest = tx.one(
                f"SELECT MAX(best_before) FROM {self.t['batches']} "
                "WHERE fridge_id = ? AND meal_id = ?",
                (fridge.fridge_id, meal_id),
            )
            best_before = (newest and newest[0]) or event.unknown_best_before.isoformat()
            self.add(tx, fridge.fridge_id, meal_id, best_before, difference)

    @handles(e.MealsExpired)
    def _expired(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for batch in event.batches:
            tx.execute(
                f"DELETE FROM {self.t['batches']} WHERE fridge_id = ? AND meal_id = ? "
                "AND best_before = ?",
                (fridge.fridge_id, batch["meal_id"], batch["best_before"]),
            )

    @handles(e.MealsReserved)
    def _reserved(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for meal_id, units in event.lines.items():
            tx.execute(
                f"INSERT INTO {self.t['holds']} (fridge_id, order_id, meal_id, units) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (fridge_id, order_id, meal_id) "
                "DO UPDATE SET units = excluded.units",
                (fridge.fridge_id, event.order_id, meal_id, units),
            )

    @handles(e.ReservationReleased)
    def _released(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.unhold(tx, fridge.fridge_id, event.order_id)

    @handles(e.MealsPickedUp)
    def _picked_up(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        self.unhold(tx, fridge.fridge_id, event.order_id)
        fresh_from = local_day(event.at, fridge.timezone).isoformat()  # a sold meal is fresh
        for meal_id, units in event.lines.items():
            self.take(tx, fridge.fridge_id, meal_id, units, fresh_from)

    @handles(e.FridgeTakenOffline, e.FridgeBackOnline, e.FridgeRetired)
    def _status(self, event: Any, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        status = {
            e.FridgeTakenOffline: "offline",
            e.FridgeBackOnline: "active",
            e.FridgeRetired: "retired",
        }[type(event)]
        if fridge is not None:
            tx.execute(
                f"UPDATE {self.t['fridges']} SET status = ? WHERE stream = ?",
                (status, fridge.stream),
            )

    # ---- the fridge's arithmetic -----------------------------------------------------------

    def add(self, tx: Tx, fridge_id: str, meal_id: str, best_before: str, units: int) -> None:
        tx.execute(
            f"INSERT INTO {self.t['batches']} (fridge_id, meal_id, best_before, units) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (fridge_id, meal_id, best_before) "
            f"DO UPDATE SET units = {self.t['batches']}.units + excluded.units",
            (fridge_id, meal_id, best_before, units),
        )

    def take(self, tx: Tx, fridge_id: str, meal_id: str, units: int, fresh_from: str = "") -> None:
        """Remove units oldest batch first, never below zero (as `Fridge._take`); with
        `fresh_from`, batches still good on that day go first."""
        batches = tx.rows(
            f"SELECT best_before, units FROM {self.t['batches']} WHERE fridge_id = ? "
            "AND meal_id = ? ORDER BY best_before",
            (fridge_id, meal_id),
        )
        batches.sort(key=lambda row: (str(row[0]) < fresh_from, str(row[0])))
        for best_before, in_batch in batches:
            if units == 0:
                break
            taken = min(units, in_batch)
            units -= taken
            key = (fridge_id, meal_id, best_before)
            if taken == in_batch:
                tx.execute(
                    f"DELETE FROM {self.t['batches']} WHERE fridge_id = ? AND meal_id = ? "
                    "AND best_before = ?",
                    key,
                )
            else:
                tx.execute(
                    f"UPDATE {self.t['batches']} SET units = units - ? WHERE fridge_id = ? "
                    "AND meal_id = ? AND best_before = ?",
                    (taken, *key),
                )

    def unhold(self, tx: Tx, fridge_id: str, order_id: str) -> None:
        tx.execute(
            f"DELETE FROM {self.t['holds']} WHERE fridge_id = ? AND order_id = ?",
            (fridge_id, order_id),
        )


def availability(
    tx: Tx, projection: StockKeeping, now: datetime, where: str, params: tuple[Any, ...]
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(fridge id, meal id) -> (on hand, fresh on hand, held) for the active fridges matched.

    `where` filters the fridges table (aliased `f`), e.g. "f.venue_id = ?".
    """
    t = projection.t
    fridges = tx.rows(f"SELECT f.fridge_id, f.timezone FROM {t['fridges']} f WHERE {where}", params)
    today = {fridge_id: local_day(now, timezone).isoformat() for fridge_id, timezone in fridges}
    stock: dict[tuple[str, str], list[int]] = {}
    for fridge_id, meal_id, best_before, units in tx.rows(
        f"SELECT b.fridge_id, b.meal_id, b.best_before, b.units FROM {t['batches']} b "
        f"JOIN {t['fridges']} f ON f.fridge_id = b.fridge_id WHERE {where}",
        params,
    ):
        entry = stock.setdefault((fridge_id, meal_id), [0, 0, 0])
        entry[0] += units
        if best_before >= today[fridge_id]:
            entry[1] += units
    for fridge_id, meal_id, held in tx.rows(
        f"SELECT h.fridge_id, h.meal_id, SUM(h.units) FROM {t['holds']} h "
        f"JOIN {t['fridges']} f ON f.fridge_id = h.fridge_id WHERE {where} "
        "GROUP BY h.fridge_id, h.meal_id",
        params,
    ):
        stock.setdefault((fridge_id, meal_id), [0, 0, 0])[2] += int(held)
    return {key: (v[0], v[1], v[2]) for key, v in stock.items()}
