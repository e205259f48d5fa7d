"""City catalogue: per city, the meals on sale with total availability and the venues that
have them. Sharded by city (cities partition everything)."""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Tx
from projections.freshness import Answer, Reader
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


@dataclass(frozen=True)
class CityMenu:
    meals: list[CityMeal]
    known: bool  # the model knows a venue in the city (an empty menu is then no 404)


def city_known(tx: Tx, view: CityCatalogue, city_id: str) -> bool:
    """Whether the model knows a venue in the city."""
    found = tx.one(f"SELECT 1 FROM {view.t['venues']} WHERE city_id = ? LIMIT 1", (city_id,))
    return found is not None


def city_venues(
    tx: Tx, view: CityCatalogue, city_id: str, after: str | None, limit: int
) -> list[tuple[str, str]]:
    """(venue id, name) of a city in venue-id order, `limit` after venue id `after`."""
    rows = tx.rows(
        f"SELECT venue_id, name FROM {view.t['venues']} WHERE city_id = ? AND venue_id > ? "
        "ORDER BY venue_id LIMIT ?",
        (city_id, after or "", limit),
    )
    return [(venue_id, name) for venue_id, name in rows]


class CityCatalogueQueries:
    """What the API asks the city catalogue, through a `Reader` (its `ReadSide`)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def menu(
        self, city_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[CityMenu]:
        """GET /cities/{city}/menu: the city's meals in meal-id order."""
        return self.reader.read(
            CityCatalogue,
            lambda tx, view: CityMenu(
                city_meals(tx, view, city_id, now), city_known(tx, view, city_id)
            ),
            min_position,
        )

    def venues(
        self, city_id: str, after: str | None, limit: int, min_position: int | None = None
    ) -> Answer[list[tuple[str, str]]]:
        """GET /cities/{city}/venues: (venue id, name), `limit` after venue id `after`."""
        return self.reader.read(
            CityCatalogue,
            lambda tx, view: city_venues(tx, view, city_id, after, limit),
            min_position,
        )
