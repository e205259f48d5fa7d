"""Reference data some read models copy: meals (name, price, details) and venues.

Every shard applies these events to the same rows; a row remembers the position it was last
written at, so a shard that lags behind never overwrites a newer price with an older one.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from typing import Any

from domain.catalogue import Meal, Venue
from projections.database import Tx
from projections.projection import Projection, handles

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


class MealRows(Projection):
    """Keeps the `meals` table."""

    @handles(Meal.Registered)
    def _meal_registered(self, event: Meal.Registered, tx: Tx, position: int) -> None:
        meals = self.t["meals"]
        tx.execute(
            f"INSERT INTO {meals} (stream, meal_id, name, price, currency, details, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
            "name = excluded.name, price = excluded.price, currency = excluded.currency, "
            f"details = excluded.details, position = excluded.position "
            f"WHERE {meals}.position < excluded.position",
            (
                str(event.originator_id),
                event.meal_id,
                event.name,
                str(event.price),
                event.currency,
                json.dumps(event.details, sort_keys=True, default=str),
                position,
            ),
        )

    @handles(Meal.Repriced)
    def _meal_repriced(self, event: Meal.Repriced, tx: Tx, position: int) -> None:
        tx.execute(
            f"UPDATE {self.t['meals']} SET price = ?, position = ? WHERE stream = ? "
            "AND position < ?",
            (str(event.price), position, str(event.originator_id), position),
        )


class VenueRows(Projection):
    """Keeps the `venues` table."""

    @handles(Venue.Registered)
    def _venue_registered(self, event: Venue.Registered, tx: Tx, position: int) -> None:
        tx.execute(
            f"INSERT INTO {self.t['venues']} (venue_id, city_id, name) VALUES (?, ?, ?) "
            "ON CONFLICT (venue_id) DO NOTHING",
            (event.venue_id, event.city_id, event.name),
        )


def meal_details(tx: Tx, projection: Projection, meal_ids: list[str]) -> dict[str, Any]:
    """meal id -> (name, price, currency, details) for those known."""
    if not meal_ids:
        return {}
    marks = ", ".join("?" for _ in meal_ids)
    return {
        meal_id: (name, price, currency, json.loads(details))
        for meal_id, name, price, currency, details in tx.rows(
            f"SELECT meal_id, name, price, currency, details FROM {projection.t['meals']} "
            f"WHERE meal_id IN ({marks})",
            meal_ids,
        )
    }
