"""Fridge stock: per fridge and meal, on hand, held and available, and the last count's age.

Sharded by fridge. Operators and the fridge cloud read it; it shows every batch, so what is
past its best-before but not yet discarded is visible (on hand, but not fresh).
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.shelf import available
from projections.availability import availability
from projections.database import Tx
from projections.freshness import Answer, Reader
from projections.stock import StockKeeping


class FridgeStock(StockKeeping):
    name = "fridge_stock"


@dataclass(frozen=True)
class MealStock:
    meal_id: str
    on_hand: int
    fresh: int
    held: int
    available: int


@dataclass(frozen=True)
class FridgeStockReport:
    fridge_id: str
    venue_id: str
    status: str
    last_report_age_seconds: float | None
    meals: list[MealStock]


def fridge_report(
    tx: Tx, view: FridgeStock, fridge_id: str, now: datetime
) -> FridgeStockReport | None:
    row = tx.one(
        f"SELECT venue_id, status, last_report_at FROM {view.t['fridges']} WHERE fridge_id = ?",
        (fridge_id,),
    )
    if row is None:
        return None
    venue_id, status, last_report_at = row
    age = None
    if last_report_at:
        age = (now - datetime.fromisoformat(last_report_at)).total_seconds()
    stock = availability(tx, view, now, "f.fridge_id = ?", (fridge_id,))
    meals = [
        MealStock(meal_id, on_hand, fresh, held, available(fresh, held))
        for (_, meal_id), (on_hand, fresh, held) in sorted(stock.items())
    ]
    return FridgeStockReport(fridge_id, venue_id, status, age, meals)


class FridgeStockQueries:
    """What the API asks the fridge stock model, through a `Reader` (its `ReadSide`)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def stock(
        self, fridge_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[FridgeStockReport | None]:
        """GET /fridges/{fridge_id}/stock (None: no such fridge, or not installed yet)."""
        return self.reader.read(
            FridgeStock, lambda tx, view: fridge_report(tx, view, fridge_id, now), min_position
        )
