"""The refill plan's days: per fridge, meal and local day, what was sold through the app,
bought at the fridge without it (walk-up purchases: a count lower than the fridge expected),
thrown away past its best-before, and delivered; and the kitchen's plan for a date from them.

The plan for date D, per fridge that sells and meal:
- `sold_by_weekday`: mean units sold (app + walk-up) on D's weekday over the last `weeks`
  weeks, counting only days since the fridge's first recorded day and not after today;
- `target` = ceil(cover x sold_by_weekday) (`cover` 1 by default: a day's sales);
- `expected_waste` = ceil(mean units wasted on D's weekday, the same days);
- `sellable` = fresh on D (best-before on or after D) less what open reservations hold, never
  below zero; deliveries made on D itself are left out, so the plan for D stays what it was
  before the kitchen delivered against it;
- `to_deliver` = max(0, target + expected_waste - sellable);
- `delivered` on D, and what was `short` of or `over` the plan.
Stock is as the model holds it now: a plan for a later date assumes no sales until then.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from domain.shelf import available, is_fresh, local_day
from projections.availability import SELLING_PARAMS, SELLS
from projections.database import Tx
from projections.projection import View

DAILY_TABLES = {
    "daily": (
        "fridge_id TEXT, meal_id TEXT, day TEXT, picked_up BIGINT NOT NULL, "
        "walked_up BIGINT NOT NULL, wasted BIGINT NOT NULL, delivered BIGINT NOT NULL, "
        "PRIMARY KEY (fridge_id, meal_id, day)"
    ),
}
KINDS = ("picked_up", "walked_up", "wasted", "delivered")


class DailyRows(View):
    """Units per fridge, meal, local day and kind, added up over a batch, written at `flush`."""

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._days: dict[tuple[str, str, str], list[int]] = {}

    def add(self, kind: str, fridge_id: str, lines: Mapping[str, int], day: date) -> None:
        column = KINDS.index(kind)
        for meal_id, units in lines.items():
            if units:
                key = (fridge_id, meal_id, day.isoformat())
                self._days.setdefault(key, [0, 0, 0, 0])[column] += units

    def forget(self) -> None:
        self._days.clear()

    def flush(self, tx: Tx) -> None:
        if not self._days:
            return
        daily = self.t["daily"]
        tx.insert_rows(
            daily,
            ("fridge_id", "meal_id", "day", *KINDS),
            [(*key, *units) for key, units in sorted(self._days.items())],
            "ON CONFLICT (fridge_id, meal_id, day) DO UPDATE SET "
            + ", ".join(f"{k} = {daily}.{k} + excluded.{k}" for k in KINDS),
        )
        self._days.clear()


@dataclass(frozen=True)
class DatedRefillLine:
    day: date
    fridge_id: str
    venue_id: str
    meal_id: str
    sold: int  # app and walk-up sales on the weekdays the plan is made from
    sold_by_weekday: float
    target: int
    expected_waste: int
    sellable: int
    held: int
    expiring: int  # on hand now, no longer fresh on the day
    to_deliver: int
    delivered: int
    short: int
    over: int


def plan_for_day(
    tx: Tx, t: dict[str, str], now: datetime, day: date | None, weeks: int, cover: float
) -> list[DatedRefillLine]:
    """The plan for `day` (None: each fridge's local tomorrow), by fridge id then meal id."""
    fridges = tx.rows(
        f"SELECT f.fridge_id, f.venue_id, f.timezone FROM {t['fridges']} f WHERE {SELLS}",
        SELLING_PARAMS,
    )
    lines: list[DatedRefillLine] = []
    for fridge_id, venue_id, timezone in sorted(fridges):
        today = local_day(now, timezone)
        planned = day or today + timedelta(days=1)
        lines += _fridge_plan(tx, t, fridge_id, venue_id, today, planned, weeks, cover)
    return lines


def _fridge_plan(
    tx: Tx,
    t: dict[str, str],
    fridge_id: str,
    venue_id: str,
    today: date,
    planned: date,
    weeks: int,
    cover: float,
) -> list[DatedRefillLine]:
    (first,) = tx.rows(f"SELECT MIN(day) FROM {t['daily']} WHERE fridge_id = ?", (fridge_id,))
    first_day = date.fromisoformat(first[0]) if first[0] else planned
    history = [
        d.isoformat()
        for d in (planned - timedelta(weeks=k) for k in range(1, weeks + 1))
        if first_day <= d <= today
    ]
    meals: dict[str, dict[str, Any]] = {}

    def meal(meal_id: str) -> dict[str, Any]:
        return meals.setdefault(
            meal_id, {"sold": 0, "wasted": 0, "fresh": 0, "expiring": 0, "held": 0, "on_day": 0}
        )

    for meal_id, found_day, picked, walked, wasted, delivered in tx.rows(
        f"SELECT meal_id, day, picked_up, walked_up, wasted, delivered FROM {t['daily']} "
        "WHERE fridge_id = ? AND day >= ?",
        (fridge_id, (planned - timedelta(weeks=weeks)).isoformat()),
    ):
        entry = meal(meal_id)
        if found_day in history:
            entry["sold"] += int(picked) + int(walked)
            entry["wasted"] += int(wasted)
        if found_day == planned.isoformat():
            entry["on_day"] += int(delivered)
    on_day = planned.isoformat()
    for meal_id, best_before, units in tx.rows(
        f"SELECT meal_id, best_before, units FROM {t['batches']} WHERE fridge_id = ?",
        (fridge_id,),
    ):
        meal(meal_id)["fresh" if is_fresh(best_before, on_day) else "expiring"] += int(units)
    for meal_id, held in tx.rows(
        f"SELECT meal_id, SUM(units) FROM {t['holds']} WHERE fridge_id = ? GROUP BY meal_id",
        (fridge_id,),
    ):
        meal(meal_id)["held"] = int(held)
    lines = []
    days = len(history)
    for meal_id, e in sorted(meals.items()):
        sold = e["sold"] / days if days else 0.0
        target = math.ceil(cover * sold - 1e-9)
        waste = math.ceil(e["wasted"] / days - 1e-9) if days else 0
        sellable = available(e["fresh"] - e["on_day"], e["held"])
        to_deliver = max(0, target + waste - sellable)
        delivered = e["on_day"]
        lines.append(
            DatedRefillLine(
                planned,
                fridge_id,
                venue_id,
                meal_id,
                e["sold"],
                round(sold, 2),
                target,
                waste,
                sellable,
                e["held"],
                e["expiring"],
                to_deliver,
                delivered,
                max(0, to_deliver - delivered),
                max(0, delivered - to_deliver),
            )
        )
    return lines
