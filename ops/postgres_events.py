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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
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
from psycopg import Cursor
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
        self.insert_in_one_statement = SQL(
            "WITH pin AS MATERIALIZED (SELECT pg_current_xact_id() AS xid) "
            "INSERT INTO {t} (originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM pin, unnest(%s::{schema}.{stored_event}[]) WITH ORDINALITY AS e "
            "WHERE pin.xid IS NOT NULL ORDER BY e.ordinality "
            "RETURNING notification_id"
        ).format(
            t=table,
            schema=Identifier(datastore.schema),
            stored_event=Identifier(self.stored_event_type_name),
        )
        self._head = SafeHead()
        self._head_lock = threading.Lock()

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
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit
            curs.execute(self.insert_in_one_statement, (rows,), prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]

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
