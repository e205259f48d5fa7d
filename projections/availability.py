"""What the stock rows say can be sold: per fridge and meal, on hand, fresh and held, for
the selling fridges a view asks about. The venue menu, the city catalogue and the fridge
stock read through it; the rules are the domain's (`is_fresh`, `sells`).
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.fridge import SELLING
from domain.shelf import is_fresh, local_day
from projections.database import Tx, marks
from projections.stock import StockKeeping

SELLS = f"f.status IN ({marks(SELLING)})"
"""The SQL filter for fridges that sell (aliased `f`), bound to `SELLING_PARAMS`: built from
the domain's definition (`domain.fridge.sells`), never spelled here."""
SELLING_PARAMS: tuple[str, ...] = tuple(status.value for status in SELLING)


def availability(
    tx: Tx, projection: StockKeeping, now: datetime, where: str, params: tuple[Any, ...]
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(fridge id, meal id) -> (on hand, fresh on hand, held) for the fridges matched.

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
        if is_fresh(best_before, today[fridge_id]):
            entry[1] += units
    for fridge_id, meal_id, held in tx.rows(
        f"SELECT h.fridge_id, h.meal_id, SUM(h.units) FROM {t['holds']} h "
        f"JOIN {t['fridges']} f ON f.fridge_id = h.fridge_id WHERE {where} "
        "GROUP BY h.fridge_id, h.meal_id",
        params,
    ):
        stock.setdefault((fridge_id, meal_id), [0, 0, 0])[2] += int(held)
    return {key: (v[0], v[1], v[2]) for key, v in stock.items()}
