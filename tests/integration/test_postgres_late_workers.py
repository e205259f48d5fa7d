"""Worker processes on PostgreSQL without the table lock, killed around late commits.

Appends that took lower positions stay open while later ones commit: a worker stops below
them; it is killed with SIGKILL there and again in the middle of applying what came after
they ended (one committed, one rolled back); restarted, every read model equals a rebuild
from zero, the run that was never interrupted.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable

import pytest

from ops.root import WriteSide
from ops.settings import Settings
from projections.database import Database
from tests.integration.postgres_held import (
    Held,
    held_appends,
    new_meal,
    new_stocked_fridge,
    pg_models,
    pg_settings,
    pg_side,
)
from tests.integration.projection_processes import position, start_workers, wait_until
from tests.integration.projection_world import run_workload, runner_for, seed_world, table_contents

__all__ = ["held_appends", "pg_models", "pg_settings", "pg_side"]

pytestmark = pytest.mark.slow

# Two read models that between them apply every event these appends carry (meals, fridges,
# deliveries, reservations). Each model in a worker opens an event store pool of its own, so
# all six in one process would take most of the server's 100 connections.
MODELS = ["fridge_stock", "venue_menu"]


def test_a_worker_killed_around_late_commits_ends_as_if_never_interrupted(
    pg_side: WriteSide, pg_settings: Settings, pg_models: Callable[[str], Database]
) -> None:
    rng = random.Random(9)
    world = seed_world(pg_side, rng)
    run_workload(pg_side, world, rng, steps=60)
    dbs = {name: pg_models(name) for name in MODELS}

    def positions() -> list[int]:
        return [position(db, name) for name, db in dbs.items()]

    # Started first: a process opening the store creates its tables if need be, and that
    # waits for appends in flight (CREATE INDEX IF NOT EXISTS takes a SHARE lock).
    worker = start_workers(pg_settings, MODELS, batch_size=5)
    try:
        head = pg_side.store.position() or 0
        wait_until(lambda: min(positions()) >= head, what="the workers to catch up")
        now, meal = pg_side.clock(), world.meals[0]
        kept = new_stocked_fridge(world.venues[0], world.city, meal, now)
        lost = new_stocked_fridge(world.venues[1], world.city, meal, now)
        stays, goes = Held(pg_side.store, kept), Held(pg_side.store, lost)
        burnt = Held(pg_side.store, new_meal())
        run_workload(pg_side, world, rng, steps=60)  # commits above the open transactions
        gap = stays.ids[0]
        assert (pg_side.store.position() or 0) > burnt.ids[-1]
        wait_until(lambda: min(positions()) >= gap - 1, what="the workers to reach the gap")
        assert positions() == [gap - 1] * len(dbs), "no worker passes an open transaction"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

    stays.commit()
    goes.roll_back()
    burnt.roll_back()
    run_workload(pg_side, world, rng, steps=40)
    head = pg_side.store.position() or 0

    worker = start_workers(pg_settings, MODELS, batch_size=5)
    try:
        middle = min(head, gap + rng.randint(5, 30))
        wait_until(lambda: max(positions()) >= middle, what=f"a worker past {middle}")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

    worker = start_workers(pg_settings, MODELS, batch_size=5)
    try:
        wait_until(lambda: min(positions()) >= head, timeout=60, what="every model at the head")
    finally:
        worker.terminate()
        assert worker.wait(10) == 0

    for name, db in dbs.items():
        rebuilt = runner_for(pg_side, db, name, generation=2)
        wait_until(lambda r=rebuilt: r.catch_up() >= 0 and r.position >= head, what=name)
        assert table_contents(db, name, 1) == table_contents(db, name, 2), name
    stock = repr(table_contents(dbs["fridge_stock"], "fridge_stock"))
    assert kept.fridge_id in stock
    assert lost.fridge_id not in stock
