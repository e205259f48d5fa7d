"""Worker processes: crash-safe catch-up, one active per shard, clean stop, poison events."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable

import pytest

from ops.root import WriteSide
from ops.settings import Settings
from projections.database import Database
from tests.integration.projection_fixtures import models
from tests.integration.projection_processes import position, roles, start_worker, wait_until
from tests.integration.projection_world import run_workload, runner_for, seed_world, table_contents

__all__ = ["models"]

pytestmark = pytest.mark.slow

NAME = "venue_menu"


def test_a_worker_killed_during_catch_up_ends_as_if_never_interrupted(
    side: WriteSide, store_settings: Settings, models: Callable[[str], Database]
) -> None:
    rng = random.Random(3)
    world = seed_world(side, rng)
    run_workload(side, world, rng, steps=500)
    head = side.store.position() or 0
    db = models(NAME)

    for _ in range(3):  # kill at random points of the catch-up
        worker = start_worker(store_settings, NAME, batch_size=5)
        target = min(head, position(db, NAME) + rng.randint(10, head // 4))
        wait_until(lambda t=target: position(db, NAME) >= t, what=f"position {target}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    worker = start_worker(store_settings, NAME, batch_size=5)
    try:
        wait_until(lambda: position(db, NAME) >= head, what="the head")
        wait_until(lambda: roles(db, NAME, worker) == ["running"], what="the worker to report")
    finally:
        worker.terminate()
        assert worker.wait(10) == 0

    runner_for(side, db, NAME, generation=2).catch_up()
    assert table_contents(db, NAME, 1) == table_contents(db, NAME, 2)


def test_a_second_worker_waits_and_takes_over_when_the_first_dies(
    side: WriteSide, store_settings: Settings, models: Callable[[str], Database]
) -> None:
    rng = random.Random(4)
    world = seed_world(side, rng)
    db = models(NAME)
    first = start_worker(store_settings, NAME)
    wait_until(lambda: roles(db, NAME, first) == ["running"], what="the first worker to run")
    second = start_worker(store_settings, NAME)
    try:
        wait_until(lambda: roles(db, NAME, second) == ["standby"], what="a standby")
        run_workload(side, world, rng, steps=30)
        head = side.store.position() or 0
        wait_until(lambda: position(db, NAME) >= head, what="the first worker to catch up")

        first.send_signal(signal.SIGKILL)
        first.wait(10)
        run_workload(side, world, rng, steps=30)
        head = side.store.position() or 0
        wait_until(lambda: position(db, NAME) >= head, what="the standby to take over")
        assert roles(db, NAME, second) == ["running"]
    finally:
        for worker in (first, second):
            if worker.poll() is None:
                worker.terminate()
                worker.wait(10)
    assert second.returncode == 0, "SIGTERM stops a worker cleanly"


def test_sigterm_stops_a_worker_cleanly_and_a_restart_resumes(
    side: WriteSide, store_settings: Settings, models: Callable[[str], Database]
) -> None:
    rng = random.Random(5)
    world = seed_world(side, rng)
    run_workload(side, world, rng, steps=60)
    db = models(NAME)
    worker = start_worker(store_settings, NAME)
    wait_until(lambda: position(db, NAME) >= (side.store.position() or 0), what="catch-up")
    wait_until(lambda: roles(db, NAME, worker) == ["running"], what="the worker to report")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert roles(db, NAME, worker) == []

    run_workload(side, world, rng, steps=30)
    worker = start_worker(store_settings, NAME)
    try:
        wait_until(lambda: position(db, NAME) >= (side.store.position() or 0), what="resume")
    finally:
        worker.terminate()
        worker.wait(10)
    runner_for(side, db, NAME, generation=2).catch_up()
    assert table_contents(db, NAME, 1) == table_contents(db, NAME, 2)
