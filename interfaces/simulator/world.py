"""The simulated world: cities, venues, fridges and meals of its own (ids under one run tag),
registered through the operators' routes, and what each fridge physically holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from interfaces.simulator.client import Api

TIMEZONES = ("Europe/Berlin", "Europe/Lisbon", "Europe/Madrid", "Europe/Rome", "Europe/Vienna")
MEALS = (
    ("Lentil dal with rice", "7.90"),
    ("Chicken teriyaki bowl", "9.50"),
    ("Falafel wrap", "6.90"),
    ("Chicken caesar salad", "8.50"),
    ("Beef chili con carne", "9.90"),
    ("Salmon poke", "11.50"),
    ("Mushroom risotto", "8.90"),
    ("Greek yoghurt with berries", "3.90"),
    ("Green tofu curry", "8.40"),
    ("Pasta bolognese", "8.20"),
    ("Quinoa power bowl", "8.80"),
    ("Overnight oats", "4.20"),
)
MEALS_PER_FRIDGE = 6


@dataclass
class Fridge:
    fridge_id: str
    venue_id: str
    city_id: str
    meals: list[str]
    physical: dict[str, int] = field(default_factory=dict)
    """What is really on the shelves: deliveries in, pickups and walk-ups out."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)
    reports: int = 0
    orders_since_report: int = 0
    last_report: dict[str, Any] | None = None


@dataclass
class World:
    tag: str
    cities: dict[str, str]  # city id -> timezone
    venues: dict[str, str]  # venue id -> city id
    fridges: dict[str, Fridge]
    meals: dict[str, str]  # meal id -> price
    customers: list[str]

    def venue_fridges(self, venue_id: str) -> list[Fridge]:
        return [f for f in self.fridges.values() if f.venue_id == venue_id]

    def city_venues(self, city_id: str) -> list[str]:
        return sorted(v for v, c in self.venues.items() if c == city_id)

    def ids(self) -> dict[str, Any]:
        """The world as a ledger keeps it (for `--check-only`)."""
        return {
            "tag": self.tag,
            "cities": self.cities,
            "venues": self.venues,
            "fridges": {
                f.fridge_id: [f.venue_id, f.city_id, f.meals] for f in self.fridges.values()
            },
            "meals": self.meals,
            "customers": self.customers,
        }

    @classmethod
    def from_ids(cls, ids: dict[str, Any]) -> World:
        fridges = {
            fridge_id: Fridge(fridge_id, venue_id, city_id, list(meals))
            for fridge_id, (venue_id, city_id, meals) in ids["fridges"].items()
        }
        return cls(
            ids["tag"], ids["cities"], ids["venues"], fridges, ids["meals"], ids["customers"]
        )


def plan_world(tag: str, cities: int, fridges: int, customers: int) -> World:
    """`cities` cities, `fridges` fridges over venues of one to three fridges each, the meals,
    and the customers: all named under `sim-<tag>`."""
    prefix = f"sim-{tag}"
    city_ids = {f"{prefix}-c{i}": TIMEZONES[i % len(TIMEZONES)] for i in range(cities)}
    meal_ids = {f"{prefix}-m{i}": price for i, (_, price) in enumerate(MEALS)}
    meal_list = sorted(meal_ids)
    venues: dict[str, str] = {}
    planned: dict[str, Fridge] = {}
    city_list = sorted(city_ids)
    venue_number = 0
    while len(planned) < fridges:
        city_id = city_list[venue_number % len(city_list)]
        venue_id = f"{city_id}-v{venue_number}"
        venues[venue_id] = city_id
        for k in range(min(1 + venue_number % 3, fridges - len(planned))):
            start = (venue_number * 5 + k * 3) % len(meal_list)
            meals = [meal_list[(start + i) % len(meal_list)] for i in range(MEALS_PER_FRIDGE)]
            fridge_id = f"{venue_id}-f{k}"
            planned[fridge_id] = Fridge(fridge_id, venue_id, city_id, meals)
        venue_number += 1
    people = [f"{prefix}-u{i}" for i in range(customers)]
    return World(tag, city_ids, venues, planned, meal_ids, people)


async def register(api: Api, world: World) -> None:
    """Create the world through the operators' routes (a repeat is a 200, so a re-run with
    the same tag changes nothing)."""

    async def create(kind: str, path: str, body: dict[str, Any]) -> None:
        answer = await api.call(kind, "POST", path, "operator", "operator", body)
        if not answer.ok:
            raise SetupFailed(f"POST {path} {body} answered {answer.status}: {answer.body}")

    for city_id, timezone in world.cities.items():
        await create(
            "setup", "/cities", {"city_id": city_id, "name": city_id, "timezone": timezone}
        )
    await asyncio.gather(
        *(
            create(
                "setup",
                "/meals",
                {"meal_id": meal_id, "name": MEALS[i][0], "price": price, "currency": "EUR"},
            )
            for i, (meal_id, price) in enumerate(sorted(world.meals.items(), key=meal_order))
        )
    )
    for venue_id, city_id in world.venues.items():
        await create(
            "setup", "/venues", {"venue_id": venue_id, "city_id": city_id, "name": venue_id}
        )
    await asyncio.gather(
        *(
            create("setup", "/fridges", {"fridge_id": f.fridge_id, "venue_id": f.venue_id})
            for f in world.fridges.values()
        )
    )


def meal_order(item: tuple[str, str]) -> int:
    return int(item[0].rsplit("-m", 1)[1])


class SetupFailed(Exception):
    """The API refused to register the simulated world."""
