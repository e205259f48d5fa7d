"""A small world for integration tests: one city, one venue, fridges, meals, all unique ids."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from application.orders import PlacedOrder
from domain.errors import SoldOut
from domain.fridge import Fridge
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock, unique


@dataclass(frozen=True)
class World:
    city_id: str
    venue_id: str
    fridge_id: str
    soup: str
    salad: str


def make_world(side: WriteSide, *, soup_units: int = 10, salad_units: int = 5) -> World:
    city, venue, fridge = unique("city"), unique("venue"), unique("fridge")
    soup, salad = unique("soup"), unique("salad")
    side.catalogue.register_city(city, "Berlin", "Europe/Berlin")
    side.catalogue.register_venue(venue, city, "Gym")
    side.catalogue.install_fridge(fridge, venue)
    side.catalogue.register_meal(soup, "Lentil soup", "6.50", "EUR")
    side.catalogue.register_meal(salad, "Caesar salad", "8.50", "EUR")
    best_before = (side.clock() + timedelta(days=2)).date()
    for meal, units in ((soup, soup_units), (salad, salad_units)):
        if units:  # a delivery per meal: one delivery brings at most MOST_UNITS
            side.stock.deliver(fridge, unique("delivery"), {meal: units}, best_before)
    return World(city, venue, fridge, soup, salad)


def alternate_four(sides: list[WriteSide], world: World) -> list[str]:
    """Four one-soup orders alternating between two write sides, each side's copy stale behind
    the other's append: a lost append apiece. The order ids."""
    return [
        sides[n % 2].ordering.place("warm", f"w{n}", world.fridge_id, {world.soup: 1}).order_id
        for n in range(4)
    ]


def one_soup_each(
    sides: list[WriteSide], world: World, callers: int, orders_each: int
) -> tuple[list[str], int]:
    """`callers` threads, alternating between the write sides, each placing `orders_each`
    one-soup orders at the world's fridge: the order ids placed, and how many sold out."""

    def caller(index: int) -> tuple[list[str], int]:
        side, mine, sold_out = sides[index % 2], [], 0
        for n in range(orders_each):
            try:
                placed = side.ordering.place(
                    f"c{index}", f"k{index}-{n}", world.fridge_id, {world.soup: 1}
                )
                mine.append(placed.order_id)
            except SoldOut:
                sold_out += 1
        return mine, sold_out

    with ThreadPoolExecutor(callers) as pool:
        tallies = list(pool.map(caller, range(callers)))
    return [o for mine, _ in tallies for o in mine], sum(sold_out for _, sold_out in tallies)


def assert_sold_once(side: WriteSide, world: World, placed: list[str], units: int) -> Fridge:
    """Every unit of soup sold once: `units` distinct orders, and the fridge as stored (not
    this side's copy) holds exactly those. The fridge, for further checks."""
    assert len(placed) == len(set(placed)) == units
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.held(world.soup) == units
    assert sorted(fridge.open_orders()) == sorted(placed)
    return fridge


def place_and_open(
    side: WriteSide, customer: str, key: str, fridge_id: str, lines: dict[str, int]
) -> PlacedOrder:
    """Given an order placed and opened by the fulfilment flow (as it opens every one)."""
    placed = side.ordering.place(customer, key, fridge_id, lines)
    side.ordering.ensure_order(placed.order_id, fridge_id)
    return placed


def dying_after_a_fridge_append(settings: Settings) -> WriteSide:
    """A write side whose process is SIGKILLed the moment a fridge's append returns, before
    it does anything else: the worst moment for anything that appends to two aggregates."""
    side = build_write_side(settings, clock=FakeClock())
    append = side.store.append

    def append_then_die(aggregate: Any) -> int | None:
        position = append(aggregate)
        if isinstance(aggregate, Fridge):
            os.kill(os.getpid(), signal.SIGKILL)
        return position

    side.store.append = append_then_die  # type: ignore[method-assign]
    return side
