"""PostgreSQL without the table lock: readers never pass an event that can still appear.

A transaction that took a lower position and is still open holds every reader below it while
later appends commit; once it commits, it is applied; if it rolls back (or an insert fails and
burns an id), the gap is passed over once no transaction that could fill it is alive.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.postgres_events import ParallelAppendRecorder
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from projections.database import PostgresDatabase, Tx
from projections.projection import Projection
from projections.runner import Runner
from tests.conftest import FakeClock
from tests.integration.postgres_held import (
    SMALL_POOL,
    Held,
    held_appends,
    new_meal,
    pg_models,
    pg_settings,
    pg_side,
)
from tests.integration.projection_processes import wait_until
from tests.integration.projection_world import runner_for, table_contents

__all__ = ["held_appends", "pg_models", "pg_settings", "pg_side"]

STOCK_RECORDER = {
    "APPLICATION_RECORDER_TOPIC": get_topic(PostgresApplicationRecorder),
    **SMALL_POOL,
}


class Audit(Projection):
    """Counts how often each position was applied: exactly once is the rule."""

    name = "audit"
    tables = {"applied": "position BIGINT PRIMARY KEY, times BIGINT NOT NULL"}

    def apply(self, event: Any, tx: Tx, position: int) -> None:
        applied = self.t["applied"]
        tx.execute(
            f"INSERT INTO {applied} (position, times) VALUES (?, 1) "
            f"ON CONFLICT (position) DO UPDATE SET times = {applied}.times + 1",
            (position,),
        )


@pytest.fixture
def audit_db(pg_settings: Settings) -> Iterator[PostgresDatabase]:
    assert pg_settings.postgres_dsn
    db = PostgresDatabase(pg_settings.postgres_dsn, pg_settings.postgres_schema, max_size=2)
    yield db
    db.close()


def committed_ids(settings: Settings) -> list[int]:
    assert settings.postgres_dsn
    with psycopg.connect(settings.postgres_dsn) as conn:
        rows = conn.execute(
            f'SELECT notification_id FROM "{settings.postgres_schema}".farmacy_events '
            "ORDER BY notification_id"
        ).fetchall()
    return [row[0] for row in rows]


def caught_up(runner: Runner, side: WriteSide) -> bool:
    runner.catch_up()
    return runner.position >= (side.store.position() or 0)


def test_the_postgres_profile_appends_without_the_table_lock(pg_side: WriteSide) -> None:
    assert type(pg_side.store.recorder) is ParallelAppendRecorder


def test_an_append_has_its_transaction_id_before_it_takes_any_notification_id(
    pg_side: WriteSide,
) -> None:
    """The safe head relies on it. The append is one statement: the plan must compute the
    `pin` (pg_current_xact_id) beneath the rows that draw their ids (nextval). Without
    MATERIALIZED and a use of pin.xid, PostgreSQL drops the unused CTE: no xid first at all."""
    recorder = pg_side.store.recorder
    assert isinstance(recorder, ParallelAppendRecorder)
    row = recorder.construct_pg_stored_event(new_meal().id, 0, "topic", b"{}")
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        statement = recorder.insert_in_one_statement.as_bytes(conn)
        curs.execute(b"EXPLAIN VERBOSE " + statement, ([row],))
        plan = [next(iter(line.values())) for line in curs.fetchall()]

    def depth(word: str) -> int:
        (line,) = [line for line in plan if word in line]
        return len(line) - len(line.lstrip())

    assert any("pg_current_xact_id()" in line for line in plan)
    assert any("Filter: (pin.xid IS NOT NULL)" in line for line in plan)
    assert depth("nextval(") < depth("CTE Scan on pin"), "\n".join(plan)


def test_a_lower_position_held_open_is_waited_for_then_applied(
    pg_side: WriteSide, pg_models: Any
) -> None:
    db = pg_models("venue_menu")
    runner = runner_for(pg_side, db, "venue_menu", batch_size=3)
    held = Held(pg_side.store, new_meal())
    later = [
        pg_side.catalogue.register_meal(f"later-{n}", "Later", "4.50", "EUR") for n in range(5)
    ]
    newest = pg_side.store.position() or 0
    assert newest == later[-1].position and newest > held.ids[-1]

    runner.catch_up()
    assert runner.position == held.ids[0] - 1, "the reader stops below the open transaction"
    assert (pg_side.store.recorder.max_notification_id() or 0) == held.ids[0] - 1
    assert len(table_contents(db, "venue_menu")["meals"]) == held.ids[0] - 1

    held.commit()
    wait_until(lambda: caught_up(runner, pg_side), what="the held append to be applied")
    assert runner.position == newest
    assert len(table_contents(db, "venue_menu")["meals"]) == 6


def test_a_rolled_back_lower_position_is_passed_over_once_certain(
    pg_side: WriteSide, pg_models: Any
) -> None:
    db = pg_models("venue_menu")
    runner = runner_for(pg_side, db, "venue_menu", batch_size=3)
    held = Held(pg_side.store, new_meal())
    for n in range(4):
        pg_side.catalogue.register_meal(f"later-{n}", "Later", "4.50", "EUR")
    runner.catch_up()
    assert runner.position == held.ids[0] - 1

    held.roll_back()
    wait_until(lambda: caught_up(runner, pg_side), what="the gap to be passed over")
    assert len(table_contents(db, "venue_menu")["meals"]) == 4


def test_an_id_burnt_by_a_version_conflict_is_passed_over(pg_side: WriteSide) -> None:
    recorder = pg_side.store.recorder
    meal = new_meal()
    stored = [pg_side.store.mapper.to_stored_event(e) for e in meal.collect_events()]
    recorder.insert_events(stored)
    with pytest.raises(IntegrityError):
        recorder.insert_events(stored)  # takes an id, then fails: a gap nobody fills
    pg_side.catalogue.register_meal("after-the-gap", "After", "4.50", "EUR")
    newest = pg_side.store.position() or 0
    wait_until(lambda: recorder.max_notification_id() == newest, what="the gap to be final")
    assert [n.id for n in recorder.select_notifications(start=None, limit=10)] == [1, newest]


def test_a_store_written_by_the_stock_recorder_is_read_as_it_is(
    pg_settings: Settings, clock: FakeClock, pg_models: Any
) -> None:
    """No migration: the table the library's own recorder created (with the gaps its failed
    inserts left) is read whole by the new recorder, and appended to."""
    old = build_write_side(pg_settings, clock=clock, extra_env=STOCK_RECORDER)
    try:
        assert type(old.store.recorder) is PostgresApplicationRecorder
        for n in range(20):
            old.catalogue.register_meal(f"old-{n}", "Old", "3.50", "EUR")
        meal = new_meal()
        stored = [old.store.mapper.to_stored_event(e) for e in meal.collect_events()]
        old.store.recorder.insert_events(stored)
        with pytest.raises(IntegrityError):
            old.store.recorder.insert_events(stored)  # the stock recorder burns ids too
        old.catalogue.register_meal("old-last", "Old", "3.50", "EUR")
        written = committed_ids(pg_settings)
    finally:
        old.close()

    new = build_write_side(pg_settings, clock=clock, extra_env=SMALL_POOL)
    try:
        assert type(new.store.recorder) is ParallelAppendRecorder
        wait_until(lambda: new.store.recorder.max_notification_id() == written[-1], what="the head")
        read = new.store.recorder.select_notifications(start=None, limit=100)
        assert [n.id for n in read] == written
        new.catalogue.register_meal("new-first", "New", "3.50", "EUR")
        db = pg_models("venue_menu")
        runner = runner_for(new, db, "venue_menu")
        wait_until(lambda: caught_up(runner, new), what="the model")
        assert len(table_contents(db, "venue_menu")["meals"]) == 23
    finally:
        new.close()


# ---- random commit and rollback orders ----------------------------------------------------

FATES = st.sampled_from(["commit", "roll back", "conflict"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), fates=st.lists(FATES, min_size=1, max_size=5))
def test_any_commit_and_rollback_order_applies_each_committed_event_once(
    pg_side: WriteSide, pg_settings: Settings, audit_db: PostgresDatabase, data: Any, fates: Any
) -> None:
    """Transactions take ids in order, later appends commit above them, then they end in a
    random order with the runner stepping in between. The checkpoint never passes an id that
    is still open; in the end every committed event was applied exactly once, and nothing
    rolled back was applied."""
    # Everything is drawn before the first transaction opens: hypothesis may stop an example
    # at any draw, and a transaction left open would hold every later reader at its gap.
    batch_size = data.draw(st.integers(1, 4))
    later = data.draw(st.lists(st.booleans(), min_size=len(fates), max_size=len(fates)))
    order = data.draw(st.permutations(range(len(fates))))
    steps = data.draw(st.lists(st.integers(0, 2), min_size=len(fates), max_size=len(fates)))
    store = pg_side.store
    runner = Runner(store, audit_db, Audit, batch_size=batch_size)
    held: list[Held | None] = []
    try:
        for fate, append_later in zip(fates, later, strict=True):
            if fate == "conflict":  # an insert that takes an id and fails: never filled
                stored = [store.mapper.to_stored_event(e) for e in new_meal().collect_events()]
                store.recorder.insert_events(stored)
                with pytest.raises(IntegrityError):
                    store.recorder.insert_events(stored)
                held.append(None)
            else:
                held.append(Held(store, new_meal()))
            if append_later:
                store.save(new_meal("later"))
        for index, stepping in zip(order, steps, strict=True):
            transaction = held[index]
            if transaction is not None:
                transaction.commit() if fates[index] == "commit" else transaction.roll_back()
            for _ in range(stepping):
                runner.step()
                still_open = [h.ids[0] for h in held if h is not None and h.open]
                assert runner.position < min(still_open, default=runner.position + 1)
    finally:
        for transaction in held:
            if transaction is not None:
                transaction.roll_back()

    wait_until(lambda: caught_up(runner, pg_side), what="the audit to catch up")
    with audit_db.snapshot() as tx:
        applied = dict(tx.rows(f"SELECT position, times FROM {Audit().t['applied']}"))
    assert sorted(applied) == committed_ids(pg_settings)
    assert set(applied.values()) == {1}


def test_reading_from_zero_inclusive_looks_at_the_table(pg_side: WriteSide) -> None:
    """start=0 with inclusive_of_start asks for everything (the fulfilment tests do)."""
    pg_side.catalogue.register_meal("first", "First", "4.50", "EUR")
    read = pg_side.store.recorder.select_notifications(start=0, limit=10, inclusive_of_start=True)
    assert [n.id for n in read] == [1]
