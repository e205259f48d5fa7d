"""Stock as the fridges keep it: what each fridge event means for the stock rows
(projections/stock_rows.py), batches by best-before and holds by reservation.

The views only add and subtract what the events say: a delivery adds to its best-before
batch; a count's adjustment and a pickup say which batches gained or lost how many units;
expired batches are removed; a reservation holds units until it is released or picked up.
Counts and pickups recorded before events said what moved are worked out by the fridge's own
rules (domain/shelf.py: `counted`, `sold`), as the fridge replays them. What can be sold
depends on the day, so what is available (domain/shelf.py `available`) is worked out when a
query asks (projections/availability.py).

Fridge events after `Installed` carry only the stream id: the `fridges` table (and a cache of
it) maps it to the fridge, venue and city, and decides which shard a fridge belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from domain.fridge import Fridge, FridgeStatus
from domain.shelf import counted, local_day, sold
from projections.database import Tx
from projections.projection import Projection, Shard, View, handles
from projections.stock_rows import STOCK_TABLES, FridgeRef, StockRows

__all__ = ["STOCK_TABLES", "FridgeRef", "StockKeeping"]

STATUS_AFTER = {
    Fridge.TakenOffline: FridgeStatus.OFFLINE,
    Fridge.BackOnline: FridgeStatus.ACTIVE,
    Fridge.Retired: FridgeStatus.RETIRED,
}
"""The fridge's status after each event that changes it."""


class StockKeeping(Projection):
    """A projection that keeps fridges' batches and holds (for the shards it owns): what each
    fridge event means for the stock rows, written through `StockRows`."""

    tables: ClassVar[dict[str, str]] = dict(STOCK_TABLES)

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.stock = StockRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.stock)

    def shard_key(self, fridge: FridgeRef) -> str:
        """What this model shards fridges by (the fridge unless a subclass says otherwise)."""
        return fridge.fridge_id

    def fridge(self, tx: Tx, event: Fridge.Event) -> FridgeRef | None:
        """The fridge an event belongs to, if this shard keeps it."""
        return self.stock.fridge(tx, str(event.originator_id))

    @handles(Fridge.Installed)
    def _installed(self, event: Fridge.Installed, tx: Tx, position: int) -> None:
        fridge = FridgeRef(
            str(event.originator_id), event.fridge_id, event.venue_id, event.city_id, event.timezone
        )
        if self.shard.owns(self.shard_key(fridge)):
            self.stock.install(tx, fridge)
        else:
            self.stock.pass_over(fridge.stream)

    @handles(Fridge.MealsDelivered)
    def _delivered(self, event: Fridge.MealsDelivered, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for meal_id, units in event.lines.items():
            self.stock.move(tx, fridge.fridge_id, meal_id, {event.best_before.isoformat(): units})

    @handles(Fridge.CountsReported)
    def _counted(self, event: Fridge.CountsReported, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.stock.reported(fridge, event.taken_at)

    @handles(Fridge.StockAdjusted)
    def _adjusted(self, event: Fridge.StockAdjusted, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for meal_id, difference in event.differences.items():
            if event.batches is not None:
                moved = event.batches[meal_id]
            else:  # recorded before events said what moved: the fridge's rule says it
                known = self.stock.batches(tx, fridge.fridge_id, meal_id)
                moved = counted(known, difference, event.unknown_best_before)
            self.stock.move(tx, fridge.fridge_id, meal_id, moved)

    @handles(Fridge.MealsExpired)
    def _expired(self, event: Fridge.MealsExpired, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        for batch in event.batches:
            self.stock.throw_out(tx, fridge.fridge_id, batch["meal_id"], batch["best_before"])

    @handles(Fridge.MealsReserved)
    def _reserved(self, event: Fridge.MealsReserved, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.stock.hold(tx, fridge.fridge_id, event.order_id, event.lines)

    @handles(Fridge.ReservationReleased)
    def _released(self, event: Fridge.ReservationReleased, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.stock.unhold(tx, fridge.fridge_id, event.order_id)

    @handles(Fridge.MealsPickedUp)
    def _picked_up(self, event: Fridge.MealsPickedUp, tx: Tx, position: int) -> None:
        fridge = self.fridge(tx, event)
        if fridge is None:
            return
        self.stock.unhold(tx, fridge.fridge_id, event.order_id)
        for meal_id, units in event.lines.items():
            if event.batches is not None:
                moved = event.batches[meal_id]
            else:  # recorded before events said what moved: the fridge's rule says it
                known = self.stock.batches(tx, fridge.fridge_id, meal_id)
                moved = sold(known, units, local_day(event.at, fridge.timezone))
            self.stock.move(tx, fridge.fridge_id, meal_id, moved)

    @handles(Fridge.TakenOffline, Fridge.BackOnline, Fridge.Retired)
    def _status(
        self,
        event: Fridge.TakenOffline | Fridge.BackOnline | Fridge.Retired,
        tx: Tx,
        position: int,
    ) -> None:
        fridge = self.fridge(tx, event)
        status = STATUS_AFTER[type(event)]
        if fridge is not None:
            self.stock.set_status(fridge, status)
