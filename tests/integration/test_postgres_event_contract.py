"""The unlocked PostgreSQL recorder against eventsourcing's own recorder contract suites.

Subclassed the way the library tests its own PostgreSQL recorder: each test gets a fresh
datastore on a schema of its own (the `postgres_schema` fixture), closed and dropped after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from psycopg.conninfo import conninfo_to_dict

from ops.postgres_events import ParallelAppendRecorder


def datastore_for(dsn: str, schema: str, pool_size: int = 4) -> PostgresDatastore:
    parts = conninfo_to_dict(dsn)
    return PostgresDatastore(
        dbname=str(parts["dbname"]),
        host=str(parts.get("host") or "127.0.0.1"),
        port=str(parts.get("port") or "5432"),
        user=str(parts.get("user") or "postgres"),
        password=str(parts.get("password") or ""),
        schema=schema,
        pool_size=pool_size,
        max_overflow=12,
    )


class OnASchemaOfItsOwn:
    datastore: PostgresDatastore

    @pytest.fixture(autouse=True)
    def _datastore(self, postgres_schema: tuple[str, str]) -> Iterator[None]:
        self.datastore = datastore_for(*postgres_schema)
        yield
        self.datastore.close()

    def create_recorder(self) -> ParallelAppendRecorder:
        recorder = ParallelAppendRecorder(self.datastore, events_table_name="stored_events")
        recorder.create_table()
        return recorder


class TestParallelAppendRecorder(
    OnASchemaOfItsOwn, ApplicationRecorderTestCase[ParallelAppendRecorder]
):
    def test_insert_subscribe(self) -> None:
        """The library's optional subscription test: subscriptions poll (no NOTIFY)."""
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(OnASchemaOfItsOwn, NonInterleavingNotificationIDsBaseCase):
    insert_num = 1000

    def test(self) -> None:
        """Overridden: two appends racing may interleave their ids, by design.

        The library keeps each transaction's ids contiguous by holding the table lock from the
        first id to the commit; that lock is exactly what this recorder removes. Nothing in
        Farmacy relies on a save's ids being adjacent: readers apply events one by one and
        wait on the last id of a save. What must still hold is asserted here: both appends
        are read back whole, each in its own order, and nothing else appears.
        """
        recorder = self.create_recorder()
        before = recorder.max_notification_id()
        first, second = self.new_originator_id(), self.new_originator_id()
        stacks = [self.create_stack(first), self.create_stack(second)]
        errors: list[Exception] = []

        def insert(stack: Any) -> None:
            try:
                recorder.insert_events(stack)
            except Exception as error:
                errors.append(error)

        import threading

        threads = [threading.Thread(target=insert, args=(stack,)) for stack in stacks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        read = recorder.select_notifications(
            start=before, limit=3 * self.insert_num, inclusive_of_start=False
        )
        assert len(read) == 2 * self.insert_num
        for originator in (first, second):
            versions = [n.originator_version for n in read if n.originator_id == originator]
            assert versions == list(range(self.insert_num))
