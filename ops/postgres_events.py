"""PostgreSQL appends that commit in parallel, and readers that never pass an event in flight.

eventsourcing's PostgreSQL recorder locks the events table (`LOCK TABLE ... IN EXCLUSIVE
MODE`) from before each insert until its commit, so that ids commit in the order they were
taken. Every append of every process queues on that lock. This recorder takes no lock: ids
may then commit out of order, so it shows readers only a *safe head*, the highest id below
which no event can still appear, and `select_notifications` never returns anything above it.
Positions stay integers: checkpoints, `min_position` tokens and the HTTP contract are
unchanged, and a store written by the stock recorder is read as it is (no migration).

How the head moves (Marten's high-water mark, with PostgreSQL's own snapshots):

- Each inserting transaction first asks for its transaction id (`pg_current_xact_id()`),
  *before* the sequence hands out its notification ids. Any transaction holding an id
  therefore has an xid assigned before that id was taken.
- One statement reads, in one snapshot S, its xmin, the highest visible id and the visible ids
  above the head. A contiguous run above the head is final (every id in it has committed).
- At the first missing id, every id up to `top` (the highest visible in S) was taken before
  `top` committed, hence by a transaction whose xid was assigned before S. The reader then
  takes a transaction id of its own, R (assigned after S, so larger than all of those), and
  commits it. Once a later snapshot has `xmin > R`, every such transaction has ended: an id
  up to `top` that is still absent in that snapshot was rolled back (or consumed by a failed
  insert, such as a version conflict) and never appears. The head moves to `top`.

Why a fresh xid R rather than `pg_snapshot_xmax(S)`: xmax is "latest completed xid + 1", and
a transaction that holds the missing id may have been given an xid >= xmax(S) (it pinned its
xid after the transaction that took the next id did, but took its id first). Then a later
snapshot can show `xmin >= xmax(S)` while that transaction is still running, and the gap
would be skipped. An xid assigned after S is above every xid assigned before S.

Two cautions (docs/architecture.md): a snapshot's xmin is cluster-wide, so a long transaction
that holds an xid anywhere on the server (another database, an idle-in-transaction session)
holds readers at the first gap until it ends; and appends send no NOTIFY, which would
serialise commits on the server's notification queue (subscriptions poll instead).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import (
    ApplicationRecorder,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import get_topic, retry
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

log = structlog.get_logger(__name__)

WINDOW = 1_000
"""Ids above the head one look walks; a longer run is passed by the horizon instead."""

POLL_SUBSCRIPTION = 0.05
"""Seconds between a subscription's pulls: appends send no NOTIFY to wake it."""

# The first statement of every inserting transaction: the xid exists before any id is taken.
PIN_XID = SQL("SELECT pg_current_xact_id()")
# A transaction of the reader's own, committed at once: its xid is above every xid assigned
# before the look that called for it.
NEW_XID = SQL("SELECT pg_current_xact_id()::text::bigint AS xid")

TURNS = 0x4672_6467  # "Frdg": the advisory-lock class of stream turns (two-int4 key space)
# One statement: take the stream's turn at once if it is free, else wait for it in
# PostgreSQL's queue of waiters; true if another session held it first.
TAKE_TURN = (
    "SELECT CASE WHEN pg_try_advisory_lock(%(c)s, %(k)s) THEN false "
    "ELSE (SELECT true FROM pg_advisory_lock(%(c)s, %(k)s)) END AS waited"
)
END_TURN = "SELECT pg_advisory_unlock(%(c)s, %(k)s)"
TURN_WAIT_SECONDS = 2
"""The longest a writer waits for another process's turn on a stream; then it writes without
one, and optimistic concurrency decides as it always does."""


@dataclass(frozen=True)
class Look:
    """What one statement saw, in one snapshot."""

    xmin: int  # the oldest transaction id still running (pg_snapshot_xmin)
    top: int | None  # the highest id visible
    ids: Sequence[int]  # visible ids above the head asked about, ascending, at most WINDOW


@dataclass(frozen=True)
class Horizon:
    """Every id up to `top` still absent in a snapshot whose xmin is above `bound` is final."""

    top: int
    bound: int


@dataclass
class SafeHead:
    """The highest id below which no event can still appear. Pure: fed looks and bounds."""

    final: int = 0
    horizon: Horizon | None = None

    def see(self, look: Look) -> bool:
        """Move the head on with what `look` saw. True when ids above the head are not known
        final and no horizon is waiting for them: the caller should `pin` a new one."""
        if self.horizon is not None and look.xmin > self.horizon.bound:
            self.final = max(self.final, self.horizon.top)
            self.horizon = None
        for notification_id in look.ids:
            if notification_id <= self.final:
                continue
            if notification_id != self.final + 1:
                break  # a gap: an id taken by a transaction in flight, or rolled back
            self.final = notification_id
        if self.horizon is not None and self.horizon.top <= self.final:
            self.horizon = None
        return look.top is not None and look.top > self.final and self.horizon is None

    def pin(self, look: Look, bound: int) -> None:
        """`bound` is an xid assigned after `look`'s snapshot was taken."""
        assert look.top is not None
        self.horizon = Horizon(top=look.top, bound=bound)


class ParallelAppendRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder without the table lock; readers see
    only up to the safe head. Chosen with APPLICATION_RECORDER_TOPIC (ops/stores.py)."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        if datastore.enable_db_functions:
            # The library's insert function takes ids without pinning an xid first.
            raise ProgrammingError(
                "POSTGRES_ENABLE_DB_FUNCTIONS cannot be used with ParallelAppendRecorder"
            )
        super().__init__(datastore, events_table_name=events_table_name)
        self.lock_table_statements = []
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table_name))
        self.look_statement = SQL(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, "
            "(SELECT max(notification_id) FROM {t}) AS top, "
            "ARRAY(SELECT notification_id FROM {t} WHERE notification_id > %s "
            "ORDER BY notification_id LIMIT %s) AS ids"
        ).format(t=table)
        # The rows travel as one composite array in binary (`%b`): the events' bytea state
        # goes as its bytes, not as hex text twice its size that the server must parse.
        self.insert_in_one_statement = SQL(
            "WITH pin AS MATERIALIZED (SELECT pg_current_xact_id() AS xid) "
            "INSERT INTO {t} (originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM pin, unnest(%b::{schema}.{stored_event}[]) WITH ORDINALITY AS e "
            "WHERE pin.xid IS NOT NULL ORDER BY e.ordinality "
            "RETURNING notification_id"
        ).format(
            t=table,
            schema=Identifier(datastore.schema),
            stored_event=Identifier(self.stored_event_type_name),
        )
        # Rendered once: a composed statement is rendered again on every execution.
        self.insert_in_one_statement_text = self.insert_in_one_statement.as_string(None)
        select = self.select_events_statement.as_string(None)
        self.select_newer_text = f"{select} AND originator_version > %s ORDER BY originator_version"
        self._head = SafeHead()
        self._head_lock = threading.Lock()
        self._turns = threading.local()  # the turn this thread holds, if any
        self._bounded_waits: weakref.WeakSet[Connection[DictRow]] = weakref.WeakSet()

    # ---- taking turns on a stream ---------------------------------------------------------

    @contextmanager
    def turn(self, originator_id: UUID, after: int) -> Iterator[tuple[bool, list[StoredEvent]]]:
        """Take turns with other processes on one stream while this thread reads its newest
        events and appends to it, so that a busy stream is not a stream of conflicts.

        A session advisory lock keyed by the stream, on one pooled connection held for the
        turn; this thread's reads and its append inside go through that connection, so a turn
        costs no second connection. PostgreSQL queues the waiters, so processes take turns in
        order. Taking the turn and reading the events after version `after` are one round
        trip (pipelined: the read runs once the lock is had, so it sees every append of the
        turn before), and so are the append and giving the turn up (the unlock runs after the
        append has committed). Yields whether another process held the turn first, and the
        stream's events after `after`.

        The lock only spares conflicts: the append still checks the version, and a turn not
        had within TURN_WAIT_SECONDS (or a writer that takes none) is decided by optimistic
        concurrency as before.
        """
        key = {"c": TURNS, "k": int.from_bytes(originator_id.bytes[:4], "big", signed=True)}
        with self.datastore.get_connection() as conn:
            if conn not in self._bounded_waits:
                # This process's event store connections wait at most this long for any lock:
                # a turn, or an insert behind another of the same stream version (ms).
                conn.execute(f"SET lock_timeout = '{TURN_WAIT_SECONDS}s'")
                self._bounded_waits.add(conn)
            held = _Held(conn, key)
            try:
                with conn.pipeline():
                    took = conn.execute(TAKE_TURN, key, prepare=True)
                    newer = conn.cursor().execute(
                        self.select_newer_text, [originator_id, after], prepare=True
                    )
                waited = bool((took.fetchone() or {}).get("waited"))
            except psycopg.errors.LockNotAvailable:
                log.warning("events.turn_not_had", wait_seconds=TURN_WAIT_SECONDS)
                yield True, list(self.select_events(originator_id, gt=after))
                return
            self._turns.held = held
            try:
                yield waited, [_stored(row) for row in newer.fetchall()]
            finally:
                self._turns.held = None
                if not held.ended and not conn.closed:
                    try:
                        conn.execute(END_TURN, key, prepare=True)
                    except psycopg.Error:
                        conn.close()  # a session that ends gives its locks up

    @contextmanager
    def _connection(self) -> Iterator[Connection[DictRow]]:
        """The connection this thread holds a turn on, or one from the pool."""
        held: _Held | None = getattr(self._turns, "held", None)
        if held is None or held.conn.closed:
            with self.datastore.get_connection() as conn:
                yield conn
            return
        with _as_persistence_errors():
            yield held.conn

    # ---- writing ----------------------------------------------------------------------

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One statement, on an autocommit connection: it is its own transaction.

        The library's path (a pipelined transaction: BEGIN, the insert, a sync, a fetch of
        the ids, COMMIT) cost 4x the CPU and 3x the time of this one statement (measured).
        No table lock and no NOTIFY. The materialised `pin` is read before any row is made,
        and each row takes its id (`nextval`, the column default) as it is made: so the xid
        exists before any id is taken, which the safe head relies on.
        """
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        held: _Held | None = getattr(self._turns, "held", None)
        if held is not None and not held.ended and not held.conn.closed:
            return self._insert_ending_turn(held, rows)
        with self._connection() as conn, conn.cursor() as curs:
            assert conn.autocommit
            curs.execute(self.insert_in_one_statement_text, (rows,), prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]

    def _insert_ending_turn(self, held: _Held, rows: list[Any]) -> Sequence[int]:
        """The turn's append, then the unlock, in one round trip: a sync between them ends
        the append's transaction first, so the next turn's read sees what it appended. If the
        append fails (a conflict), the unlock is not sent: the turn's end sends it."""
        conn = held.conn
        with _as_persistence_errors(), conn.cursor() as curs:
            with conn.pipeline() as pipeline:
                curs.execute(self.insert_in_one_statement_text, (rows,), prepare=True)
                pipeline.sync()  # raises here if the append failed
                unlocked = conn.execute(END_TURN, held.key, prepare=True)
            held.ended = bool((unlocked.fetchone() or {}).get("pg_advisory_unlock"))
            return [row["notification_id"] for row in curs.fetchall()]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The library's select; the newer events of a stream (a writer catching up) through
        a statement rendered once, and inside a turn on the turn's connection."""
        if lte is not None or desc:
            older: Sequence[StoredEvent] = super().select_events(
                originator_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
            return older
        statement = self.select_newer_text
        params: list[Any] = [originator_id, -1 if gt is None else gt]
        if limit is not None:
            statement += " LIMIT %s"
            params.append(limit)
        with self._connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            return [_stored(row) for row in curs.fetchall()]

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Kept for the library's other paths into a transaction: pin the xid, then insert.
        curs.execute(PIN_XID, prepare=True)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    # ---- reading ----------------------------------------------------------------------

    def max_notification_id(self) -> int | None:
        """The safe head: no event at or below it can still appear. None before the first."""
        return self.safe_head() or None

    def newest_committed_id(self) -> int | None:
        """The highest id committed so far, which readers may not have reached yet: a
        read-your-writes token that covers every event committed before it was asked."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.max_notification_id_statement)
            row = curs.fetchone()
            assert row is not None
            newest: int | None = row["max"]
            return newest

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's select, never above the safe head."""
        first = max(1, 0 if start is None else start if inclusive_of_start else start + 1)
        head = self._head.final
        if first > head:  # asking past what is known final: look again
            head = self.safe_head()
        if first > head:
            return []
        stop = head if stop is None else min(stop, head)
        selected: Sequence[Notification] = super().select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )
        return selected

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def safe_head(self) -> int:
        """Look at the table and move the head as far as it safely goes (0: none yet)."""
        with self._head_lock:
            head = self._head
            look = self._look(head.final)
            if head.see(look):
                before = head.final
                head.pin(look, self._new_xid())
                head.see(self._look(head.final))  # quiet store: the gap resolves at once
                if head.horizon is not None:
                    log.debug("events.gap_waiting", head=head.final, since=before, top=look.top)
            return head.final

    def _look(self, above: int) -> Look:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.look_statement, (above, WINDOW), prepare=True)
            row = curs.fetchone()
            assert row is not None
            return Look(xmin=int(row["xmin"]), top=row["top"], ids=row["ids"])

    def _new_xid(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(NEW_XID)
            row = curs.fetchone()
            assert row is not None
            return int(row["xid"])

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(recorder=self, gt=gt, topics=topics)


@dataclass
class _Held:
    """A stream's turn this thread holds: the connection holding the lock, and its key."""

    conn: Connection[DictRow]
    key: dict[str, int]
    ended: bool = False  # the unlock went with the append


def _stored(row: DictRow) -> StoredEvent:
    return StoredEvent(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


@contextmanager
def _as_persistence_errors() -> Iterator[None]:
    """psycopg's errors as eventsourcing's, as the library's datastore raises them (a version
    conflict must reach the writer as eventsourcing's IntegrityError)."""
    try:
        yield
    except psycopg.IntegrityError as error:
        raise IntegrityError(str(error)) from error
    except psycopg.InterfaceError as error:
        raise InterfaceError(str(error)) from error
    except psycopg.OperationalError as error:
        raise OperationalError(str(error)) from error
    except psycopg.DatabaseError as error:
        raise DatabaseError(str(error)) from error
    except psycopg.Error as error:
        raise PersistenceError(str(error)) from error


class PollingSubscription(ListenNotifySubscription[ParallelAppendRecorder]):
    """The library's pull loop, woken by a clock instead of NOTIFY (which appends no longer
    send, and which could not tell when the head moves past a gap anyway)."""

    def __init__(
        self, recorder: ParallelAppendRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._clock = threading.Thread(target=self._tick, daemon=True)
        self._clock.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            time.sleep(POLL_SUBSCRIPTION)
            self._has_been_notified.set()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._clock.join()


RECORDER_TOPIC = get_topic(ParallelAppendRecorder)
"""What ops/stores.py puts in APPLICATION_RECORDER_TOPIC for the postgres profile."""
