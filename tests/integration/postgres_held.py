"""Appends whose transactions a test ends by hand, on PostgreSQL without the table lock.

`Held` runs the recorder's own insert (pin the xid, then insert) in a transaction of its own
and leaves it open, so a test can let later appends commit first, then commit or roll back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from eventsourcing.domain import Aggregate
from psycopg import Connection

from application.store import EventStore
from domain.catalogue import Meal
from domain.fridge import Fridge
from ops.postgres_events import ParallelAppendRecorder
from ops.root import WriteSide, build_write_side, open_database
from ops.settings import Settings
from projections.database import Database
from tests.conftest import FakeClock, settings_for

SMALL_POOL = {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "10"}
"""The server's 100 connections are shared with every other suite running on it."""


class Held:
    """One append, taken its ids and left uncommitted until `commit` or `roll_back`.

    Every Held still open when a test ends is rolled back by the `held_appends` fixture
    (autouse where this module's fixtures are used): an open one would keep the test's
    schema from being dropped."""

    opened: ClassVar[list[Held]] = []

    def __init__(self, store: EventStore, aggregate: Aggregate) -> None:
        Held.opened.append(self)
        recorder = store.recorder
        assert isinstance(recorder, ParallelAppendRecorder)
        stored = [store.mapper.to_stored_event(event) for event in aggregate.collect_events()]
        self._connection: AbstractContextManager[Connection[Any]] = (
            recorder.datastore.get_connection()
        )
        self.conn = self._connection.__enter__()
        self.conn.execute("BEGIN")
        # The library's pool ends sessions idle in a transaction after 5 s: not this one.
        self.conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        with self.conn.cursor() as curs:
            recorder._insert_stored_events(curs, stored)
            self.ids: list[int] = [row["notification_id"] for row in curs.fetchall()]
        self.open = True

    def commit(self) -> None:
        self._end("COMMIT")

    def roll_back(self) -> None:
        self._end("ROLLBACK")

    def _end(self, how: str) -> None:
        if self.open:
            self.open = False
            self.conn.execute(how)
            self._connection.__exit__(None, None, None)


def new_meal(tag: str = "held") -> Meal:
    return Meal.register(f"{tag}-{uuid.uuid4().hex[:10]}", "Held soup", "5.50", "EUR")


def new_stocked_fridge(venue_id: str, city_id: str, meal_id: str, now: datetime) -> Fridge:
    """A fridge installed and stocked in one append: events several read models apply."""
    fridge = Fridge(
        fridge_id=f"held-{uuid.uuid4().hex[:10]}",
        venue_id=venue_id,
        city_id=city_id,
        timezone="Europe/Berlin",
    )
    fridge.deliver(f"d-{uuid.uuid4().hex[:8]}", {meal_id: 4}, now.date() + timedelta(days=2), now)
    return fridge


@pytest.fixture(autouse=True)
def held_appends(postgres_schema: tuple[str, str]) -> Iterator[None]:
    """Rolls back what a failed test left open, before its schema is dropped."""
    yield
    while Held.opened:
        Held.opened.pop().roll_back()


@pytest.fixture
def pg_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    return settings_for("postgres", request, tmp_path)


@pytest.fixture
def pg_models(pg_settings: Settings) -> Iterator[Callable[[str], Database]]:
    """Open read-model databases on the test's PostgreSQL schema; closed after the test."""
    opened: list[Database] = []

    def open_named(name: str) -> Database:
        opened.append(open_database(pg_settings, name))
        return opened[-1]

    yield open_named
    for db in opened:
        db.close()


@pytest.fixture
def pg_side(pg_settings: Settings, clock: FakeClock) -> Iterator[WriteSide]:
    side = build_write_side(pg_settings, clock=clock, extra_env=SMALL_POOL)
    yield side
    side.close()
