"""City catalogue: per city, the meals on sale with total availability and the venues that
have them. Sharded by city (cities partition everything)."""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.reference import MEAL_TABLES, VENUE_TABLES, KeepsMeals, KeepsVenues, meal_details
from projections.stock import STOCK_TABLES, FridgeRef, StockKeeping


class CityCatalogue(StockKeeping, KeepsMeals, KeepsVenues):
    name = "city_catalogue"
    tables: ClassVar[dict[str, str]] = {**STOCK_TABLES, **MEAL_TABLES, **VENUE_TABLES}

    def shard_key(self, fridge: FridgeRef) -> str:
        return fridge.city_id


@dataclass(frozen=True)
class CityMeal:
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int
    venues: list[str]  # venue ids with at least one unit available


def city_meals(tx: Tx, view: CityCatalogue, city_id: str, now: datetime) -> list[CityMeal]:
    stock = availability(tx, view, now, f"f.city_id = ? AND {SELLS}", (city_id, *SELLING_PARAMS))
    venue_of: dict[str, str] = dict(
        tx.rows(
            f"SELECT fridge_id, venue_id FROM {view.t['fridges']} WHERE city_id = ?", (city_id,)
        )
    )
    per_meal: dict[str, dict[str, int]] = {}
    for (fridge_id, meal_id), (_, fresh, held) in stock.items():
        venues = per_meal.setdefault(meal_id, {})
        venue = venue_of[fridge_id]
        venues[venue] = venues.get(venue, 0) + available(fresh, held)
    details = meal_details(tx, view, sorted(per_meal))
    return [
        CityMeal(
            meal_id,
            name,
            price,
            currency,
            extra,
            sum(venues.values()),
            sorted(v for v, units in venues.items() if units > 0),
        )
        for meal_id, venues in sorted(per_meal.items())
        if meal_id in details
        for name, price, currency, extra in [details[meal_id]]
    ]


class CityCatalogueQueries:
    """What the HTTP layer asks the city catalogue."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def catalogue(
        self,
        city_id: str,
        now: datetime,
        min_position: int | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> Answer[list[CityMeal]]:
        """GET /cities/{city}/menu."""
        return answer(
            self.db,
            CityCatalogue,
            lambda tx, view: city_meals(tx, view, city_id, now),
            min_position,
            timeout,
        )

    def venues(
        self, city_id: str, min_position: int | None = None, timeout: float = WAIT_TIMEOUT
    ) -> Answer[list[tuple[str, str]]]:
        """GET /cities/{city}/venues: (venue id, name)."""

        def read(tx: Tx, view: CityCatalogue) -> list[tuple[str, str]]:
            rows = tx.rows(
                f"SELECT venue_id, name FROM {view.t['venues']} WHERE city_id = ? "
                "ORDER BY venue_id",
                (city_id,),
            )
            return [(venue_id, name) for venue_id, name in rows]

        return answer(self.db, CityCatalogue, read, min_position, timeout)
