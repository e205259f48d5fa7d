"""A failing store is waited out, never mistaken for a poison event.

The read-model database here fails the way SQLite does under contention ("database is
locked") for a while; the runner must retry the same batch and end exactly where an
untroubled run ends, with no error recorded against any event.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ops.root import WriteSide
from projections.database import Database, SQLiteDatabase, Tx
from projections.projection import Shard, checkpoint, create_bookkeeping
from projections.runner import Patience, ProjectionFailed
from tests.integration.projection_fixtures import OpenModels, models
from tests.integration.projection_world import runner_for, table_contents
from tests.integration.world import make_world

__all__ = ["models"]


class Flaky(Database):
    """A database whose write transactions fail while `failing` says so."""

    def __init__(self, inner: Database, failing: Callable[[], bool]) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.failing = failing

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.inner.transaction() as tx:
            yield tx
            if self.failing():
                raise sqlite3.OperationalError("database is locked")

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self.inner.snapshot() as tx:
            yield tx

    @contextmanager
    def statement(self) -> Iterator[Tx]:
        with self.inner.statement() as tx:
            yield tx

    def close(self) -> None:
        self.inner.close()


def test_a_locked_database_is_waited_out_and_the_view_ends_as_if_nothing_happened(
    side: WriteSide, models: OpenModels
) -> None:
    world = make_world(side, soup_units=4)
    side.ordering.place("alice", "k", world.fridge_id, {world.soup: 1})
    troubled_db, calm_db = models("venue_menu"), models("fridge_stock")
    flaky = Flaky(troubled_db, lambda: False)
    runner = runner_for(side, flaky, "venue_menu", batch_size=3)
    failures = iter([True, True, True])  # three batches fail, then the database recovers
    flaky.failing = lambda: next(failures, False)
    patience, stop = Patience("venue_menu"), threading.Event()

    reads = [patience.step(runner, stop) for _ in range(3)]
    assert reads == [0, 0, 0]  # three hiccups: nothing applied, nothing raised
    while patience.step(runner, stop):
        pass

    assert runner.position == side.store.position()
    with troubled_db.snapshot() as tx:
        assert checkpoint(tx, "venue_menu", 1, Shard()) == runner.position
        errors = tx.rows("SELECT error FROM projection_checkpoints WHERE name = 'venue_menu'")
    assert errors == [(None,)]
    calm = runner_for(side, calm_db, "venue_menu")
    calm.catch_up()
    assert table_contents(troubled_db, "venue_menu") == table_contents(calm_db, "venue_menu")


def test_a_store_that_stays_down_stops_the_shard_saying_so(
    side: WriteSide, models: OpenModels
) -> None:
    make_world(side)
    flaky = Flaky(models("venue_menu"), lambda: False)
    runner = runner_for(side, flaky, "venue_menu")
    flaky.failing = lambda: True
    patience = Patience("venue_menu", seconds=0.0)
    patience.step(runner, threading.Event())  # the first failure starts the clock
    with pytest.raises(ProjectionFailed, match="stores failing for over 0 s"):
        patience.step(runner, threading.Event())


def test_eight_workers_opening_a_new_sqlite_read_model_at_once_never_fail(
    tmp_path: Path,
) -> None:
    """Switching a new file to WAL does not wait for the busy timeout; the switch must be
    retried, or a worker starting beside another dies with "database is locked"."""
    failures: list[str] = []
    for round_ in range(30):
        path = tmp_path / f"model-{round_}.sqlite"
        start = threading.Barrier(8)

        def open_and_prepare(path: Path = path, start: threading.Barrier = start) -> None:
            db = SQLiteDatabase(path)
            start.wait()
            try:
                with db.transaction() as tx:
                    create_bookkeeping(tx)
            except Exception as error:
                failures.append(repr(error))
            finally:
                db.close()

        threads = [threading.Thread(target=open_and_prepare) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
