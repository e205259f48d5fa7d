"""Refill plan: per fridge and meal, what the kitchen should deliver next.

Target stock is a day and a half of recent sales (pickups over the last `days` local days);
what expires is what will be past its best-before tomorrow; what to deliver tops the units
still sellable tomorrow (less what reservations hold) up to the target. Sharded by fridge.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar

from domain.fridge import Fridge
from domain.shelf import available, is_fresh, local_day
from projections.availability import SELLING_PARAMS, SELLS
from projections.database import Tx
from projections.freshness import Answer, Reader
from projections.projection import Shard, View
from projections.stock import STOCK_TABLES, StockKeeping

DAYS_OF_COVER = 1.5


SALES_TABLES = {
    "sales": (
        "fridge_id TEXT, meal_id TEXT, day TEXT, units BIGINT NOT NULL, "
        "PRIMARY KEY (fridge_id, meal_id, day)"
    ),
}


class SalesRows(View):
    """Units sold per fridge, meal and local day, added up over a batch and written at `flush`."""

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._sold: dict[tuple[str, str, str], int] = {}  # (fridge, meal, day) -> units

    def sold(self, fridge_id: str, lines: Mapping[str, int], day: date) -> None:
        """A fridge sold these units per meal on its local `day`."""
        for meal_id, units in lines.items():
            key = (fridge_id, meal_id, day.isoformat())
            self._sold[key] = self._sold.get(key, 0) + units

    def forget(self) -> None:
        self._sold.clear()

    def flush(self, tx: Tx) -> None:
        if self._sold:
            sales = self.t["sales"]
            tx.insert_rows(
                sales,
                ("fridge_id", "meal_id", "day", "units"),
                [(*key, units) for key, units in sorted(self._sold.items())],
                "ON CONFLICT (fridge_id, meal_id, day) "
                f"DO UPDATE SET units = {sales}.units + excluded.units",
            )
            self._sold.clear()


class RefillPlan(StockKeeping):
    """Stock keeping, and a pickup's lines counted as sales on the fridge's local day."""

    name = "refill_plan"
    tables: ClassVar[dict[str, str]] = {**STOCK_TABLES, **SALES_TABLES}

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.sales = SalesRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.sales)

    def _picked_up(self, event: Fridge.MealsPickedUp, tx: Tx, position: int) -> None:
        super()._picked_up(event, tx, position)
        fridge = self.fridge(tx, event)
        if fridge is not None:
            self.sales.sold(fridge.fridge_id, event.lines, local_day(event.at, fridge.timezone))


@dataclass(frozen=True)
class RefillLine:
    fridge_id: str
    venue_id: str
    meal_id: str
    target: int
    sold_recently: int
    sellable_tomorrow: int
    held: int
    expiring: int  # on hand now, past its best-before by tomorrow
    to_deliver: int


def plan_lines(tx: Tx, view: RefillPlan, now: datetime, days: int) -> list[RefillLine]:
    fridges = tx.rows(
        f"SELECT f.fridge_id, f.venue_id, f.timezone FROM {view.t['fridges']} f WHERE {SELLS}",
        SELLING_PARAMS,
    )
    lines = []
    for fridge_id, venue_id, timezone in sorted(fridges):
        today = local_day(now, timezone)
        tomorrow = (today + timedelta(days=1)).isoformat()
        since = (today - timedelta(days=days)).isoformat()
        per_meal: dict[str, list[int]] = {}  # sold, sellable tomorrow, held, expiring
        for meal_id, sold in tx.rows(
            f"SELECT meal_id, SUM(units) FROM {view.t['sales']} WHERE fridge_id = ? "
            "AND day >= ? GROUP BY meal_id",
            (fridge_id, since),
        ):
            per_meal.setdefault(meal_id, [0, 0, 0, 0])[0] = int(sold)
        for meal_id, best_before, units in tx.rows(
            f"SELECT meal_id, best_before, units FROM {view.t['batches']} WHERE fridge_id = ?",
            (fridge_id,),
        ):
            entry = per_meal.setdefault(meal_id, [0, 0, 0, 0])
            entry[1 if is_fresh(best_before, tomorrow) else 3] += units
        for meal_id, held in tx.rows(
            f"SELECT meal_id, SUM(units) FROM {view.t['holds']} WHERE fridge_id = ? "
            "GROUP BY meal_id",
            (fridge_id,),
        ):
            per_meal.setdefault(meal_id, [0, 0, 0, 0])[2] = int(held)
        for meal_id, (sold, sellable, held, expiring) in sorted(per_meal.items()):
            target = math.ceil(sold / days * DAYS_OF_COVER)
            deliver = max(0, target - available(sellable, held))
            lines.append(
                RefillLine(
                    fridge_id, venue_id, meal_id, target, sold, sellable, held, expiring, deliver
                )
            )
    return lines


class RefillPlanQueries:
    """What the kitchen asks the refill plan (GET /kitchen/refill-plan), through a `Reader`."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def plan(
        self, now: datetime, days: int = 7, min_position: int | None = None
    ) -> Answer[list[RefillLine]]:
        """Per fridge that sells and meal, by fridge id then meal id."""
        return self.reader.read(
            RefillPlan, lambda tx, view: plan_lines(tx, view, now, days), min_position
        )
