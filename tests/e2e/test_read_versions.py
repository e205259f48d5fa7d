"""City menus and fridge stock answered from memory while nothing they show has changed
(issue 18, part 2), as venue menus are (tests/e2e/test_menu_versions.py).

Each API process polls the city catalogue's per-city and the fridge stock's per-fridge
versions; a city or fridge whose version has not moved is answered from what the process
kept, at the position of the last poll, without a database read. Database reads are counted
through /metrics (`farmacy_read_model_reads_total`), as an operator would see them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import live_api, orders_while_reading, position
from tests.integration.world import World, make_world

__all__ = ["api", "live_api"]


@dataclass(frozen=True)
class Reading:
    """One of the answers kept by key: its model, its route and where its units are."""

    model: str
    path: Callable[[World], str]
    role: Role
    listed: str  # the body's list of meals

    def ask(self, api: Api, world: World, min_position: int | None = None) -> httpx.Response:
        params = {} if min_position is None else {"min_position": min_position}
        answer = api.client.get(
            self.path(world), params=params, headers=api.as_(self.role, "reader")
        )
        assert answer.status_code == 200, answer.text
        return answer

    def available(self, answer: httpx.Response) -> dict[str, int]:
        meals: list[dict[str, Any]] = answer.json()[self.listed]
        return {meal["meal_id"]: meal["available"] for meal in meals}

    def database_reads(self, api: Api) -> float:
        """How many times requests have read this model's database (from /metrics)."""
        pattern = rf'^farmacy_read_model_reads_total\{{projection="{self.model}"\}} (\S+)$'
        found = re.search(pattern, api.client.get("/metrics").text, re.M)
        return float(found.group(1)) if found else 0.0


CITY_MENU = Reading("city_catalogue", lambda w: f"/cities/{w.city_id}/menu", Role.CUSTOMER, "items")
FRIDGE_STOCK = Reading(
    "fridge_stock", lambda w: f"/fridges/{w.fridge_id}/stock", Role.OPERATOR, "meals"
)
READINGS = pytest.mark.parametrize("reading", [CITY_MENU, FRIDGE_STOCK], ids=["city", "fridge"])


def from_memory_at(
    api: Api, reading: Reading, world: World, wanted: int, timeout: float = 10
) -> httpx.Response:
    """Ask until an answer at `wanted` or later comes from memory (this process has polled
    the model at `wanted`): fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        reads = reading.database_reads(api)
        answer = reading.ask(api, world)
        if position(answer) >= wanted and reading.database_reads(api) == reads:
            return answer
        assert time.monotonic() < deadline, f"not from memory after {timeout} s: {answer.text}"
        time.sleep(0.02)


def test_a_write_elsewhere_leaves_the_answers_served_from_memory(live_api: Api) -> None:
    api, here = live_api, live_api.world
    there = make_world(api.side)  # another city, venue and fridge
    start = api.side.store.position()
    kept = {reading: reading.ask(api, there, start) for reading in (CITY_MENU, FRIDGE_STOCK)}
    for reading, answer in kept.items():
        assert reading.available(answer) == {there.soup: 10, there.salad: 5}

    wanted = position(api.order("ana", "k1", {here.soup: 2}))
    for reading in (CITY_MENU, FRIDGE_STOCK):
        # once this process has seen the write, the city or fridge written to shows it ...
        seen = from_memory_at(api, reading, here, wanted)
        assert reading.available(seen) == {here.soup: 8, here.salad: 5}
        # ... and the other one is answered from memory, at least at that position
        reads = reading.database_reads(api)
        for _ in range(5):
            answer = reading.ask(api, there)
            assert reading.available(answer) == reading.available(kept[reading])
            assert position(answer) >= wanted
        assert reading.database_reads(api) == reads, reading.model


@READINGS
def test_a_write_shows_at_once_with_min_position_and_soon_without(
    live_api: Api, reading: Reading
) -> None:
    api, world = live_api, live_api.world
    before = reading.ask(api, world, api.side.store.position())
    assert reading.available(before) == {world.soup: 10, world.salad: 5}

    wanted = position(api.order("ana", "k1", {world.soup: 3}))
    at_once = reading.ask(api, world, wanted)
    assert position(at_once) >= wanted
    assert reading.available(at_once) == {world.soup: 7, world.salad: 5}

    wanted = position(api.order("ana", "k2", {world.salad: 1}))
    deadline = time.monotonic() + 10
    while True:  # never a position its stock is not at
        answer = reading.ask(api, world)
        salad = reading.available(answer)[world.salad]
        assert salad == (4 if position(answer) >= wanted else 5), answer.text
        if position(answer) >= wanted:
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.02)
    from_memory_at(api, reading, world, wanted)
    reads = reading.database_reads(api)
    assert reading.available(reading.ask(api, world)) == {world.soup: 7, world.salad: 4}
    assert reading.database_reads(api) == reads  # unchanged since: from memory


def test_no_city_menu_or_fridge_stock_is_older_or_newer_than_its_position(live_api: Api) -> None:
    """Writers order in two cities while readers read both cities' menus and both fridges'
    stock; every answer's stock is exactly what the orders up to its claimed position left."""
    api = live_api
    worlds = [api.world, make_world(api.side, soup_units=8, salad_units=0)]
    initial = {worlds[0].fridge_id: 10, worlds[1].fridge_id: 8}
    answers: list[tuple[str, str, int, int]] = []  # (kind, fridge, position, soup available)

    def read(index: int) -> None:
        world, reading = worlds[index % 2], (CITY_MENU, FRIDGE_STOCK)[index // 2 % 2]
        answer = reading.ask(api, world)
        units = reading.available(answer)[world.soup]
        answers.append((reading.model, world.fridge_id, position(answer), units))

    start = api.side.store.position()
    for world in worlds:  # both fridges' deliveries are in both models
        for reading in (CITY_MENU, FRIDGE_STOCK):
            assert reading.available(reading.ask(api, world, start))[world.soup] > 0
    tries = {fridge: units + 1 for fridge, units in initial.items()}  # the last one sold out
    # (fridge, position) of each one-soup order
    placed = orders_while_reading(api, worlds, lambda world: world.fridge_id, tries, 4, read)
    last = max(at for _, at in placed)
    for world in worlds:  # and from memory once this process has polled the last write
        for reading in (CITY_MENU, FRIDGE_STOCK):
            answer = from_memory_at(api, reading, world, last)
            units = reading.available(answer)[world.soup]
            answers.append((reading.model, world.fridge_id, position(answer), units))

    assert len(placed) == 18
    assert {kind for kind, *_ in answers} == {"city_catalogue", "fridge_stock"}
    for kind, fridge, at, soup in answers:
        sold = sum(1 for f, p in placed if f == fridge and p <= at)
        assert soup == initial[fridge] - sold, (kind, fridge, at, soup)


def test_a_kept_answer_is_not_served_once_its_meals_are_past_best_before(live_api: Api) -> None:
    """What can be sold depends on the fridge's local date: a new day reads again, although
    no event moved the model (the batches' best-before has passed)."""
    api, world = live_api, live_api.world
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    start = api.side.store.position()
    for reading in (CITY_MENU, FRIDGE_STOCK):
        kept = from_memory_at(api, reading, world, position(reading.ask(api, world, start)))
        assert reading.available(kept) == {world.soup: 10, world.salad: 5}
    clock.advance(days=3)  # the batches were delivered with a best-before two days ahead
    for reading in (CITY_MENU, FRIDGE_STOCK):
        assert reading.available(reading.ask(api, world)) == {world.soup: 0, world.salad: 0}
