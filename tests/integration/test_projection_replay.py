"""Replay equivalence: after a random workload, every read model equals a rebuild from zero.

The live model is applied in small batches while the workload runs; the rebuild replays the
whole store into a new generation of the same tables. They must match table for table. The
stock tables must also match what the fridges themselves hold.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ops.root import WriteSide
from projections.database import Database
from projections.models import PROJECTIONS
from tests.integration.projection_fixtures import models
from tests.integration.projection_world import (
    run_workload,
    runner_for,
    seed_world,
    table_contents,
)

__all__ = ["models"]


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
def test_live_model_equals_a_rebuild_from_zero(
    side: WriteSide, models: Callable[[str], Database], name: str
) -> None:
    rng = random.Random(20261121)
    world = seed_world(side, rng)
    db = models(name)
    live = runner_for(side, db, name, batch_size=7)
    for _ in range(6):
        run_workload(side, world, rng, steps=40)
        live.catch_up()

    rebuilt = runner_for(side, db, name, generation=2, batch_size=1000)
    rebuilt.catch_up()

    assert rebuilt.position == live.position
    assert table_contents(db, name, 2) == table_contents(db, name, 1)
    assert any(table_contents(db, name, 1).values()), "the workload left the model empty"


def test_stock_rows_match_the_fridges(side: WriteSide, models: Callable[[str], Database]) -> None:
    rng = random.Random(7)
    world = seed_world(side, rng)
    run_workload(side, world, rng, steps=250)
    db = models("fridge_stock")
    runner_for(side, db, "fridge_stock", batch_size=50).catch_up()

    batches = {
        (fridge, meal, best_before): units
        for fridge, meal, best_before, units in table_contents(db, "fridge_stock")["batches"]
    }
    holds: dict[tuple[str, str], int] = {}
    holding: set[tuple[str, str]] = set()
    for fridge, order, meal, units in table_contents(db, "fridge_stock")["holds"]:
        holds[(fridge, meal)] = holds.get((fridge, meal), 0) + units
        holding.add((fridge, order))
    expected_batches = {}
    expected_holds = {}
    expected_holding = set()
    for fridge_id in world.fridges:
        fridge = side.catalogue.fridge(fridge_id)
        for meal in fridge.meal_ids():
            for best_before, units in fridge.shelf(meal).items():
                expected_batches[(fridge_id, meal, best_before.isoformat())] = units
            if fridge.held(meal):
                expected_holds[(fridge_id, meal)] = fridge.held(meal)
        expected_holding |= {(fridge_id, order_id) for order_id in fridge.open_orders()}
    assert batches == expected_batches
    assert holds == expected_holds
    assert holding == expected_holding
