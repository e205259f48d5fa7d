"""Two processes writing the same fridges lose appends to each other: each lost append starts
again from the fridge as stored, and nothing is sold twice or decided on a stale fridge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.fridge import Fridge
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import (
    alternate_four,
    assert_sold_once,
    make_world,
    one_soup_each,
)

NO_TURNS = 10**9  # conflicts never make a fridge fought over: every one is a restart


@pytest.fixture
def two_processes(store_settings: Settings, clock: FakeClock) -> Iterator[list[WriteSide]]:
    """Two write sides on one store, as two API processes would be, taking no turns."""
    sides = [build_write_side(store_settings, clock=clock) for _ in range(2)]
    for side in sides:
        side.writer.turns_after = NO_TURNS
    yield sides
    for side in sides:
        side.close()


def test_processes_that_keep_losing_appends_sell_each_unit_once(
    two_processes: list[WriteSide],
) -> None:
    units = 40
    here = two_processes[0]
    world = make_world(here, soup_units=units, salad_units=0)
    warm = alternate_four(two_processes, world)
    assert all(side.writer.stats.conflicts > 0 for side in two_processes)

    sold, sold_out = one_soup_each(two_processes, world, callers=12, orders_each=8)

    assert sold_out == 12 * 8 + len(warm) - units
    assert_sold_once(here, world, warm + sold, units)


def test_after_lost_appends_each_process_decides_on_the_fridge_as_stored(
    two_processes: list[WriteSide],
) -> None:
    """Orders alternate between the processes, so each loses an append now and then and
    starts again from its stored copy, caught up. Each process then decides on a fridge the
    other has just moved on: what it decides on (a decision that only reads, through the
    writer's own door) is the fridge as stored, event for event."""
    here = two_processes[0]
    world = make_world(here, soup_units=30, salad_units=10)
    for n in range(12):
        side = two_processes[(n // 2) % 2]  # two orders here, two there, ...
        lines = {world.soup: 1, world.salad: 1} if n % 3 == 0 else {world.soup: 1}
        side.ordering.place(f"c{n}", f"k{n}", world.fridge_id, lines)
    assert all(side.writer.stats.conflicts > 0 for side in two_processes), "no append was lost"

    def seen(fridge: Fridge) -> tuple[Any, ...]:
        today = fridge.today(here.clock())
        return (
            fridge.version,
            fridge.open_orders(),
            {
                meal: (fridge.held(meal), fridge.available(meal, today))
                for meal in (world.soup, world.salad)
            },
        )

    for n, side in enumerate(two_processes):
        other = two_processes[1 - n]
        other.ordering.place("last", f"last-{n}", world.fridge_id, {world.soup: 1})
        decided = side.writer.execute(world.fridge_id, seen).value
        truth = here.store.load(
            Fridge, "fridge", world.fridge_id, Fridge.create_id(world.fridge_id)
        )
        assert decided == seen(truth)
