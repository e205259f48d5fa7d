"""Stock-keeping views work a batch out in memory and write only its net changes: what that
must never change (on SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ops.root import WriteSide
from projections.database import Database, Tx
from projections.venue_menu import VenueMenu
from tests.integration.projection_fixtures import OpenModels, models
from tests.integration.projection_world import (
    catch_up,
    run_workload,
    runner_for,
    seed_world,
    table_contents,
)
from tests.integration.world import make_world, place_and_open

__all__ = ["models"]


def spy_on_writes(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Record every multi-row write the views make through `db` as (kind, table, rows)."""
    writes: list[tuple[str, str, Any]] = []
    real = db.transaction

    @contextmanager
    def spying() -> Iterator[Tx]:
        with real() as tx:
            insert_rows, delete_rows = tx.insert_rows, tx.delete_rows

            def insert(table: str, columns: Any, rows: Any, tail: str = "") -> None:
                writes.append(("insert", table, list(rows)))
                insert_rows(table, columns, rows, tail)

            def delete(table: str, columns: Any, keys: Any) -> None:
                writes.append(("delete", table, list(keys)))
                delete_rows(table, columns, keys)

            tx.insert_rows = insert  # type: ignore[method-assign]
            tx.delete_rows = delete  # type: ignore[method-assign]
            yield tx

    monkeypatch.setattr(db, "transaction", spying)
    return writes


def test_a_hold_reserved_and_released_in_one_batch_is_never_written(
    side: WriteSide, models: OpenModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(side)
    db = models("venue_menu")
    runner = catch_up(side, db, "venue_menu")
    writes = spy_on_writes(db, monkeypatch)

    cancelled = place_and_open(side, "gus", "k1", world.fridge_id, {world.soup: 2})
    side.ordering.cancel(cancelled.order_id)
    kept = place_and_open(side, "gus", "k2", world.fridge_id, {world.salad: 1})
    runner.catch_up()

    holds = VenueMenu(1).t["holds"]
    written = [row for kind, table, rows in writes if table == holds for row in rows]
    assert not [row for row in written if cancelled.order_id in row]
    assert [row for row in written if kept.order_id in row] == [
        (world.fridge_id, kept.order_id, world.salad, 1)
    ]
    assert table_contents(db, "venue_menu")["holds"] == [
        (world.fridge_id, kept.order_id, world.salad, 1)
    ]

    writes.clear()  # released in a later batch: now the row is deleted
    side.ordering.cancel(kept.order_id)
    runner.catch_up()
    assert ("delete", holds, [(world.fridge_id, kept.order_id, world.salad)]) in writes
    assert table_contents(db, "venue_menu")["holds"] == []


class ParksRepricing(VenueMenu):
    """A venue menu that cannot apply repricing and parks it (a stand-in for a bad event)."""

    policy = "park"

    def _meal_repriced(self, event: Any, tx: Any, position: int) -> None:
        raise ValueError("cannot price this")


def test_a_failed_batch_leaves_nothing_buffered_behind(side: WriteSide, models: OpenModels) -> None:
    """The whole batch is worked out in memory, then fails on a poison event and is applied
    again one by one: had memory kept the first attempt, every delivery, sale and hold before
    the poison event would count twice."""
    rng = random.Random(21)
    world = seed_world(side, rng)
    run_workload(side, world, rng, steps=60)
    side.catalogue.reprice_meal(world.meals[0], "99.90")
    run_workload(side, world, rng, steps=60)
    db = models("venue_menu")
    runner = runner_for(side, db, "venue_menu", batch_size=10_000)
    runner.factory = lambda generation, shard: ParksRepricing(generation, shard)
    runner.projection = ParksRepricing(1)
    runner.catch_up()
    assert runner.position == side.store.position()

    runner_for(side, db, "venue_menu", generation=2, batch_size=10_000).catch_up()
    parked, clean = table_contents(db, "venue_menu", 1), table_contents(db, "venue_menu", 2)
    for short in ("fridges", "batches", "holds"):
        assert parked[short] == clean[short], short
    assert any(parked["batches"]) and parked["meals"] != clean["meals"]
