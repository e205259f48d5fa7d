"""City catalogue: per city, the meals on sale with total availability and the venues that
have them. Sharded by city (cities partition everything).

It keeps per-city versions (projections/versions.py), so an API process answers a city's
menu from memory while nothing it shows has changed (`CityCatalogueQueries.menu_now`).
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.catalogue import Meal, Venue
from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Tx
from projections.freshness import Answer, Reader, ReadsInFlight, ReadState, stamped
from projections.reference import MEAL_TABLES, VENUE_TABLES, KeepsMeals, KeepsVenues, meal_details
from projections.stock import FridgeRef, StockKeeping
from projections.versions import EVERY, Remembered, Seen, Versioned, version_of, version_tables


class CityCatalogue(Versioned, StockKeeping, KeepsMeals, KeepsVenues):
    name = "city_catalogue"
    tables: ClassVar[dict[str, str]] = {
        **StockKeeping.tables,
        **MEAL_TABLES,
        **VENUE_TABLES,
        **version_tables("city_id"),
    }
    version_key = "city_id"

    def shard_key(self, fridge: FridgeRef) -> str:
        return fridge.city_id

    def changes(self, event: object, tx: Tx) -> str | None:
        """A meal's change is every city's; a venue's or a fridge's, its city's."""
        if isinstance(event, Meal.Registered | Meal.Repriced):
            return EVERY
        if isinstance(event, Venue.Registered):
            return event.city_id
        fridge = self.stock.fridge(tx, str(getattr(event, "originator_id", "")))
        return None if fridge is None else fridge.city_id


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
    version: int = 0  # the city's version in the same snapshot (projections/versions.py)
    timezones: tuple[str, ...] = ()  # of the city's fridges


def city_menu(tx: Tx, view: CityCatalogue, city_id: str, now: datetime) -> CityMenu:
    timezones = tx.rows(
        f"SELECT DISTINCT timezone FROM {view.t['fridges']} WHERE city_id = ?", (city_id,)
    )
    return CityMenu(
        city_meals(tx, view, city_id, now),
        city_known(tx, view, city_id),
        version_of(tx, view.t, "city_id", city_id),
        tuple(sorted(str(timezone) for (timezone,) in timezones)),
    )


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
    """What the API asks the city catalogue, through a `Reader` (its `ReadSide`).

    With `seen` (the API's last poll of the cities' versions), `menu_now` answers a city's
    menu from memory while the city's version has not moved, at the position of that poll;
    a `min_position` beyond it reads the database, waiting (bounded) for the model."""

    def __init__(self, reader: Reader, seen: Seen | None = None) -> None:
        self.reader = reader
        self.seen = seen
        self.menus: Remembered[CityMenu] = Remembered()
        self.in_flight = ReadsInFlight()

    def menu(
        self, city_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[CityMenu]:
        """The city's meals in meal-id order, read from the database."""
        return self.reader.read(
            CityCatalogue, lambda tx, view: city_menu(tx, view, city_id, now), min_position
        )

    async def menu_now(
        self, city_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[CityMenu]:
        """GET /cities/{city}/menu: the city's meals in meal-id order, from memory when
        nothing they show has changed since this process read them."""
        seen = self.seen() if self.seen is not None else None
        found = self.menus.current(seen, city_id, now, min_position)
        if found is not None:
            return stamped(*found)

        def read(tx: Tx, view: CityCatalogue, state: ReadState) -> CityMenu:
            menu = city_menu(tx, view, city_id, now)
            if menu.known:  # made-up ids are read, never kept
                self.menus.keep(city_id, menu, menu.version, state, menu.timezones, now)
            return menu

        def again() -> Answer[CityMenu] | None:
            latest = self.menus.current(self.seen() if self.seen else None, city_id, now, None)
            return None if latest is None else stamped(*latest)

        return await self.in_flight.read(  # one read of the city at a time
            city_id,
            lambda: self.reader.read_async(
                CityCatalogue, read, min_position, lambda state: self.menus.at(state, city_id, now)
            ),
            again,
            alone=seen is None or min_position is not None,
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
