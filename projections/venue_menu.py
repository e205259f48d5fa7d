"""Venue menu: per venue and meal, the units a customer can order there, with price and details.

Sharded by venue. Available units are summed over the venue's fridges that sell, each counted
by the domain's `available` on its own local date, exactly as a fridge decides a reservation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.reference import MEAL_TABLES, KeepsMeals, meal_details
from projections.stock import STOCK_TABLES, FridgeRef, StockKeeping


class VenueMenu(StockKeeping, KeepsMeals):
    name = "venue_menu"
    tables: ClassVar[dict[str, str]] = {**STOCK_TABLES, **MEAL_TABLES}

    def shard_key(self, fridge: FridgeRef) -> str:
        return fridge.venue_id


@dataclass(frozen=True)
class MenuItem:
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int


def menu_items(tx: Tx, view: VenueMenu, venue_id: str, now: datetime) -> list[MenuItem]:
    """The menu of one venue, in meal-id order; meals with nothing left show 0."""
    stock = availability(tx, view, now, f"f.venue_id = ? AND {SELLS}", (venue_id, *SELLING_PARAMS))
    totals: dict[str, int] = {}
    for (_, meal_id), (_, fresh, held) in stock.items():
        totals[meal_id] = totals.get(meal_id, 0) + available(fresh, held)
    details = meal_details(tx, view, sorted(totals))
    return [
        MenuItem(meal_id, name, price, currency, extra, units)
        for meal_id, units in sorted(totals.items())
        if meal_id in details
        for name, price, currency, extra in [details[meal_id]]
    ]


class VenueMenuQueries:
    """What the HTTP layer asks the venue menu."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def menu(
        self,
        venue_id: str,
        now: datetime,
        min_position: int | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> Answer[list[MenuItem]]:
        """GET /venues/{venue_id}/menu."""
        return answer(
            self.db,
            VenueMenu,
            lambda tx, view: menu_items(tx, view, venue_id, now),
            min_position,
            timeout,
        )
