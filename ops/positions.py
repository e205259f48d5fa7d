"""Where a stream's events stand in the store's one sequence: their positions, for
`farmacy trace`. The library reads a stream without its positions, so this asks the tables
the library's recorders write (SQLite and PostgreSQL); KurrentDB answers nothing here and the
trace orders its events by time instead."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from application.store import EventStore


def stream_positions(store: EventStore, stream: UUID, from_version: int = 0) -> dict[int, int]:
    """version -> position of `stream`'s events from `from_version` on (empty where the
    store cannot say)."""
    recorder = store.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        statement = (
            f"SELECT originator_version, rowid FROM {recorder.events_table_name} "  # noqa: S608
            "WHERE originator_id = ? AND originator_version >= ?"
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (stream.hex, from_version))
            return {int(version): int(position) for version, position in cursor.fetchall()}
    if isinstance(recorder, PostgresApplicationRecorder):
        query = SQL(
            "SELECT originator_version, notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version >= %s"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(query, (stream, from_version))
            return {
                int(row["originator_version"]): int(row["notification_id"])
                for row in curs.fetchall()
            }
    return {}
