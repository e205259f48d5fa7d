"""Demo data for `make run`: two cities, a few venues with one to three fridges, a dozen meals.

Seeding is idempotent: every id is fixed, so running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.catalogue import City, Meal, Venue
from domain.fridge import Fridge
from ops.root import WriteSide

CITIES = {"berlin": ("Berlin", "Europe/Berlin"), "lisbon": ("Lisbon", "Europe/Lisbon")}

VENUES = {
    # venue id: (city, name, fridges)
    "kreuzberg-gym": ("berlin", "Kreuzberg Gym", ["kreuzberg-gym-1", "kreuzberg-gym-2"]),
    "mitte-office": ("berlin", "Mitte Office Tower", ["mitte-1", "mitte-2", "mitte-3"]),
    "charite-ward": ("berlin", "Charite Ward 4", ["charite-1"]),
    "alfama-cowork": ("lisbon", "Alfama Cowork", ["alfama-1"]),
    "belem-gym": ("lisbon", "Belem Gym", ["belem-gym-1", "belem-gym-2"]),
}

MEALS = {
    # meal id: (name, price, allergens, diet tags)
    "lentil-dal": ("Lentil dal with rice", "7.90", [], ["vegan"]),
    "chicken-teriyaki": ("Chicken teriyaki bowl", "9.50", ["soy", "sesame"], []),
    "falafel-wrap": ("Falafel wrap", "6.90", ["gluten", "sesame"], ["vegan"]),
    "caesar-salad": ("Chicken caesar salad", "8.50", ["egg", "milk", "fish"], []),
    "beef-chili": ("Beef chili con carne", "9.90", [], ["gluten-free"]),
    "salmon-poke": ("Salmon poke", "11.50", ["fish", "soy"], []),
    "mushroom-risotto": ("Mushroom risotto", "8.90", ["milk"], ["vegetarian"]),
    "greek-yoghurt": ("Greek yoghurt with berries", "3.90", ["milk"], ["vegetarian"]),
    "tofu-curry": ("Green tofu curry", "8.40", ["soy"], ["vegan"]),
    "pasta-bolognese": ("Pasta bolognese", "8.20", ["gluten"], []),
    "quinoa-bowl": ("Quinoa power bowl", "8.80", ["nuts"], ["vegan", "gluten-free"]),
    "overnight-oats": ("Overnight oats", "4.20", ["gluten", "milk"], ["vegetarian"]),
}


@dataclass(frozen=True)
class Seeded:
    cities: int
    venues: int
    fridges: int
    meals: int
    deliveries: int


def demo_deliveries() -> dict[str, dict[str, int]]:
    """What the first delivery brings to each demo fridge: half the menu, 2 to 9 of each."""
    meal_ids = sorted(MEALS)
    deliveries: dict[str, dict[str, int]] = {}
    for venue_number, (_, (_, _, fridges)) in enumerate(sorted(VENUES.items())):
        for fridge_number, fridge_id in enumerate(fridges):
            start = (venue_number * 3 + fridge_number * 5) % len(meal_ids)
            chosen = [meal_ids[(start + i) % len(meal_ids)] for i in range(6)]
            deliveries[fridge_id] = {
                meal: 2 + (i * 3 + venue_number) % 8 for i, meal in enumerate(chosen)
            }
    return deliveries


def demo_order() -> tuple[str, str, str]:
    """A (venue, fridge, meal) a demo customer can really order: the fridge holds the meal."""
    venue_id = "kreuzberg-gym"
    fridge_id = VENUES[venue_id][2][0]
    return venue_id, fridge_id, max(demo_deliveries()[fridge_id].items(), key=lambda kv: kv[1])[0]


def seed_demo(side: WriteSide) -> Seeded:
    for city_id, (name, timezone) in CITIES.items():
        side.catalogue.register_city(city_id, name, timezone)
    for meal_id, (name, price, allergens, tags) in MEALS.items():
        details = {"allergens": allergens, "diet_tags": tags}
        side.catalogue.register_meal(meal_id, name, price, "EUR", details)
    best_before = (side.clock() + timedelta(days=3)).date()
    first_deliveries = demo_deliveries()
    deliveries = 0
    for venue_id, (city_id, name, fridges) in sorted(VENUES.items()):
        side.catalogue.register_venue(venue_id, city_id, name)
        for fridge_id in fridges:
            side.catalogue.install_fridge(fridge_id, venue_id)
            lines = first_deliveries[fridge_id]
            if side.stock.deliver(fridge_id, "demo-first-delivery", lines, best_before).value:
                deliveries += 1
    fridge_count = sum(len(fridges) for _, _, fridges in VENUES.values())
    return Seeded(len(CITIES), len(VENUES), fridge_count, len(MEALS), deliveries)


def store_holds(side: WriteSide) -> dict[str, int]:
    """How many cities, venues, fridges and meals the store holds, demo or not: counted from
    their creation events (one indexed pass over those topics only)."""
    created: dict[str, tuple[type[Aggregate], str]] = {
        "cities": (City, "Registered"),
        "venues": (Venue, "Registered"),
        "fridges": (Fridge, "Installed"),
        "meals": (Meal, "Registered"),
    }
    topics = {f"{get_topic(cls)}.{name}": kind for kind, (cls, name) in created.items()}
    held = dict.fromkeys(created, 0)
    start: int | None = None
    while True:
        page = side.store.recorder.select_notifications(
            start, 1000, topics=list(topics), inclusive_of_start=start is None
        )
        for notification in page:
            held[topics[notification.topic]] += 1
        if len(page) < 1000:
            return held
        start = page[-1].id


def venue_stock(side: WriteSide) -> dict[str, dict[str, int]]:
    """Available units per venue and meal, summed over the venue's fridges (from the write side)."""
    now = side.clock()
    stock: dict[str, dict[str, int]] = {}
    for venue_id, (_, _, fridges) in sorted(VENUES.items()):
        menu = stock.setdefault(venue_id, {})
        for fridge_id in fridges:
            fridge = side.catalogue.fridge(fridge_id)
            today = fridge.today(now)
            for meal_id in fridge.meal_ids():
                menu[meal_id] = menu.get(meal_id, 0) + fridge.available(meal_id, today)
    return stock
