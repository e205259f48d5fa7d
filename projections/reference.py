"""Reference data some read models copy: meals (name, price, details) and venues.

Every shard applies these events to the same rows; a row remembers the position it was last
written at, so a shard that lags behind never overwrites a newer price with an older one.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from domain.catalogue import Meal, Venue
from projections.database import Tx, marks
from projections.projection import Projection, Shard, View, handles

MEAL_TABLES = {
    "meals": (
        "stream TEXT PRIMARY KEY, meal_id TEXT NOT NULL, name TEXT NOT NULL, "
        "price TEXT NOT NULL, currency TEXT NOT NULL, details TEXT NOT NULL, "
        "position BIGINT NOT NULL"
    ),
}
VENUE_TABLES = {
    "venues": "venue_id TEXT PRIMARY KEY, city_id TEXT NOT NULL, name TEXT NOT NULL",
}


class MealRows(View):
    """A row per meal: its name, price, currency and details, as of the position written."""

    def registered(
        self,
        tx: Tx,
        stream: str,
        meal_id: str,
        name: str,
        price: Decimal,
        currency: str,
        details: Mapping[str, Any],
        position: int,
    ) -> None:
        """A meal registered (or registered again with new words): its row, unless a newer
        position already wrote it."""
        meals = self.t["meals"]
        tx.execute(
            f"INSERT INTO {meals} (stream, meal_id, name, price, currency, details, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
            "name = excluded.name, price = excluded.price, currency = excluded.currency, "
            f"details = excluded.details, position = excluded.position "
            f"WHERE {meals}.position < excluded.position",
            (
                stream,
                meal_id,
                name,
                str(price),
                currency,
                json.dumps(details, sort_keys=True, default=str),
                position,
            ),
        )

    def repriced(self, tx: Tx, stream: str, price: Decimal, position: int) -> None:
        tx.execute(
            f"UPDATE {self.t['meals']} SET price = ?, position = ? WHERE stream = ? "
            "AND position < ?",
            (str(price), position, stream, position),
        )


class VenueRows(View):
    """A row per venue: its city and name (they never change once registered)."""

    def registered(self, tx: Tx, venue_id: str, city_id: str, name: str) -> None:
        tx.execute(
            f"INSERT INTO {self.t['venues']} (venue_id, city_id, name) VALUES (?, ?, ?) "
            "ON CONFLICT (venue_id) DO NOTHING",
            (venue_id, city_id, name),
        )


class KeepsMeals(Projection):
    """A read model that copies the meals: what their events mean for `MealRows`."""

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.meals = MealRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.meals)

    @handles(Meal.Registered)
    def _meal_registered(self, event: Meal.Registered, tx: Tx, position: int) -> None:
        self.meals.registered(
            tx,
            str(event.originator_id),
            event.meal_id,
            event.name,
            event.price,
            event.currency,
            event.details,
            position,
        )

    @handles(Meal.Repriced)
    def _meal_repriced(self, event: Meal.Repriced, tx: Tx, position: int) -> None:
        self.meals.repriced(tx, str(event.originator_id), event.price, position)


class KeepsVenues(Projection):
    """A read model that copies the venues: what their events mean for `VenueRows`."""

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.venues = VenueRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.venues)

    @handles(Venue.Registered)
    def _venue_registered(self, event: Venue.Registered, tx: Tx, position: int) -> None:
        self.venues.registered(tx, event.venue_id, event.city_id, event.name)


def meal_details(tx: Tx, projection: Projection, meal_ids: list[str]) -> dict[str, Any]:
    """meal id -> (name, price, currency, details) for those known."""
    if not meal_ids:
        return {}
    return {
        meal_id: (name, price, currency, json.loads(details))
        for meal_id, name, price, currency, details in tx.rows(
            f"SELECT meal_id, name, price, currency, details FROM {projection.t['meals']} "
            f"WHERE meal_id IN ({marks(meal_ids)})",
            meal_ids,
        )
    }
