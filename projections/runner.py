"""The batching runner: read notifications, apply a batch, move the checkpoint, commit once.

Every notification is read (no topic filter in the database), so the checkpoint moves past
events a view ignores and a reader waiting for a position never waits in vain. Only the events
the view wants are decoded (`Projection.wants`), and the batch's last one for the time the
checkpoint records; an event the view ignores therefore never stops it. A batch is one
transaction holding the view's changes and its checkpoint: a crash anywhere loses either the
whole batch or none of it, so nothing is counted twice and nothing is skipped. A view may
work a batch out in memory: the runner has it `flush` in the batch's transaction, before the
checkpoint moves, and has it `forget` everything whenever a transaction is rolled back.

A batch that fails is applied again event by event, each in a savepoint, to find the event
that cannot be applied. Under the "stop" policy the events before it are committed and the
shard stops with an error naming the event and its position; under "park" the event goes to
`projection_dead_letters` and the shard carries on. Nothing is skipped silently.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import eventsourcing.persistence
import psycopg
import structlog
from eventsourcing.persistence import Notification
from prometheus_client import Counter, Histogram

from domain.causes import log_ids
from projections.database import Database, Tx
from projections.projection import (
    Projection,
    Shard,
    active_generation,
    checkpoint,
    create_bookkeeping,
    now_iso,
    utc_iso,
)
from projections.source import EventSource

# Counted where they happen, for the process's metrics port (ops/metrics.py). "projection" is
# a read model's or a trail's name (fulfilment, snapshots): a trail is a projection too.
BATCH_EVENTS = Histogram(
    "farmacy_projection_batch_events",
    "Events one batch of a read model or trail applied",
    ["projection"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
RETRIES = Counter(
    "farmacy_projection_retries",
    "Batches backed off from and tried again (a store's hiccup, or a trail's transient failure)",
    ["projection"],
)
DEAD_LETTERS = Counter(
    "farmacy_projection_dead_letters",
    "Events parked in projection_dead_letters (policy park; counted again if the batch repeats)",
    ["projection"],
)

BATCH_SIZE = 500


log = structlog.get_logger("farmacy.projections")


class ProjectionFailed(Exception):
    """A shard stopped on an event its view cannot apply."""


class CheckpointMoved(Exception):
    """Another worker moved this shard's checkpoint: this one must stop, not double-apply."""


class GenerationSwitched(Exception):
    """A side-by-side rebuild switched the model to a new generation under this runner."""


class StoreHiccup(Exception):
    """The event store or the read-model database failed (unreachable, locked, pool empty).

    Nothing of the batch was applied; the same batch is tried again later. Such a failure is
    never mistaken for an event the view cannot apply.
    """


TRANSIENT: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout
    eventsourcing.persistence.OperationalError,  # includes the library's pool timeouts
    eventsourcing.persistence.InterfaceError,
)
"""Failures of a store, not of an event: the batch is tried again later. A projection adds
its own (`Projection.transient`), such as a trail whose commands may lose to conflicts."""


def prepare(db: Database, projection: Projection) -> None:
    """Create the bookkeeping and the projection's tables, and its checkpoint row."""
    with db.transaction() as tx:
        create_bookkeeping(tx)  # takes the schema-changes lock for the whole transaction
        tx.execute(
            "INSERT INTO projection_generations (name, active) VALUES (?, 1) "
            "ON CONFLICT (name) DO NOTHING",
            (projection.name,),
        )
        projection.create_tables(tx)
        tx.execute(
            "INSERT INTO projection_checkpoints (name, generation, shard, position, updated_at) "
            "VALUES (?, ?, ?, 0, ?) ON CONFLICT (name, generation, shard) DO NOTHING",
            (projection.name, projection.generation, str(projection.shard), now_iso()),
        )


class Runner:
    """Applies the event store's notifications to one projection shard, a batch at a time.

    With `follow_active` (workers) the runner applies to whichever generation is active and
    moves to a new one when a side-by-side rebuild switches; without it (rebuilds) it stays on
    the generation it was given.
    """

    def __init__(
        self,
        store: EventSource,
        db: Database,
        factory: Callable[[int, Shard], Projection],
        shard: Shard | None = None,
        *,
        generation: int | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.store = store
        self.db = db
        self.factory = factory
        self.shard = shard or Shard()
        self.follow_active = generation is None
        self.batch_size = batch_size
        self._last_time: datetime | None = None  # when the event at `_timed` happened
        self._timed: int | None = None
        self._pending = 0
        # A line per event applied only where debug lines are wanted (FARMACY_LOG_LEVEL):
        # asked once here, so the hot loop pays one attribute test per event.
        self._tracing = log.is_enabled_for(logging.DEBUG)
        self.projection = factory(generation or 1, self.shard)
        if generation is None:
            prepare(db, self.projection)
            with db.snapshot() as tx:
                current = active_generation(tx, self.projection.name)
            self.projection = factory(current, self.shard)
        prepare(db, self.projection)
        with db.snapshot() as tx:
            self.position = checkpoint(tx, self.name, self.projection.generation, self.shard) or 0

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def transient(self) -> tuple[type[Exception], ...]:
        return TRANSIENT + self.projection.transient

    def head(self) -> int:
        newest: int | None = self.store.recorder.max_notification_id()
        return newest or 0

    def step(self) -> int:
        """Apply the next batch, if any. Returns how many notifications it covered.

        Raises StoreHiccup when a store failed; the position is then unchanged.
        """
        try:
            notifications: Sequence[Notification] = self.store.recorder.select_notifications(
                start=self.position or None,
                limit=self.batch_size,
                inclusive_of_start=False,
            )
        except TRANSIENT as failure:
            raise StoreHiccup(f"{self.name}: reading the event store: {failure}") from failure
        if not notifications:
            return 0
        try:
            with self.db.transaction() as tx:
                self._check_generation(tx)
                for notification in notifications:
                    self._apply(tx, notification)
                self.projection.flush(tx)
                self._advance(tx, notifications[-1])
        except (CheckpointMoved, GenerationSwitched):
            self.projection.forget()
            raise
        except self.transient as failure:
            self.projection.forget()
            raise StoreHiccup(f"{self.name}: applying a batch: {failure}") from failure
        except Exception:
            self.projection.forget()
            self._apply_one_by_one(notifications)
        else:
            self.position = notifications[-1].id
        return len(notifications)

    def catch_up(self, progress: Callable[[int], Any] | None = None) -> int:
        """Apply batches until a pass finds nothing new, following a moving head (what a
        rebuild does). `progress(done)` is called after each batch. Returns notifications
        read."""
        done = 0
        while True:
            read = self.step()
            if read == 0:
                return done
            done += read
            if progress is not None:
                progress(done)

    # ---- inside a batch ----------------------------------------------------------------

    def _apply(self, tx: Tx, notification: Notification) -> None:
        if self.projection.wants(notification.topic):
            event = self.store.mapper.to_domain_event(notification)
            self.projection.apply(event, tx, notification.id)
            self._last_time, self._timed = getattr(event, "timestamp", None), notification.id
            if self._tracing:
                log.debug(
                    "event_projected",
                    projection=self.name,
                    shard=str(self.shard),
                    position=notification.id,
                    type=type(event).__qualname__,
                    **log_ids(event),
                )

    def _time(self, last: Notification) -> None:
        """Know when the event the checkpoint moves to happened, decoding it if the view did
        not want it. The time only tells readers how far behind the view is: an event that
        cannot be decoded keeps the time known before, as it never stops a view ignoring it."""
        if self._timed == last.id:
            return
        try:
            event = self.store.mapper.to_domain_event(last)
        except Exception:  # the view has applied all it wants: only the time is unknown
            return
        self._last_time, self._timed = getattr(event, "timestamp", None), last.id

    def _advance(self, tx: Tx, last: Notification) -> None:
        self._time(last)
        moved = tx.execute(
            "UPDATE projection_checkpoints SET position = ?, event_at = ?, updated_at = ?, "
            "error = NULL WHERE name = ? AND generation = ? AND shard = ? AND position = ?",
            (
                last.id,
                utc_iso(self._last_time) if self._last_time else None,
                now_iso(),
                self.name,
                self.projection.generation,
                str(self.shard),
                self.position,
            ),
        )
        if moved != 1:
            raise CheckpointMoved(
                f"{self.name} shard {self.shard}: checkpoint is no longer at {self.position}"
            )
        self._pending = last.id

    def _check_generation(self, tx: Tx) -> None:
        if self.follow_active and active_generation(tx, self.name) != self.projection.generation:
            raise GenerationSwitched(self.name)

    def _apply_one_by_one(self, notifications: Sequence[Notification]) -> None:
        try:
            self._apply_each(notifications)
        except BaseException:
            self.projection.forget()
            raise

    def _apply_each(self, notifications: Sequence[Notification]) -> None:
        failure: str | None = None
        with self.db.transaction() as tx:
            self._check_generation(tx)
            last_good: Notification | None = None
            for notification in notifications:
                try:
                    with tx.savepoint():
                        self._apply(tx, notification)
                        self.projection.flush(tx)
                except Exception as error:
                    self.projection.forget()  # memory goes back with the savepoint
                    if isinstance(error, self.transient):  # a store failed, not the event
                        raise StoreHiccup(f"{self.name}: applying: {error}") from error
                    why = (
                        f"{self.name} shard {self.shard}: cannot apply {notification.topic} "
                        f"at position {notification.id}: {error!r}"
                    )
                    log.warning(
                        "event_not_projected",
                        projection=self.name,
                        shard=str(self.shard),
                        position=notification.id,
                        topic=notification.topic,
                        policy=self.projection.policy,
                        why=repr(error),
                        **self._ids(notification),
                    )
                    if self.projection.policy != "park":
                        failure = why
                        break
                    self._park(tx, notification, why)
                last_good = notification
            if last_good is not None:
                self._advance(tx, last_good)
            if failure is not None:
                tx.execute(
                    "UPDATE projection_checkpoints SET error = ? WHERE name = ? "
                    "AND generation = ? AND shard = ?",
                    (failure, self.name, self.projection.generation, str(self.shard)),
                )
        if last_good is not None:
            self.position = self._pending
        if failure is not None:
            raise ProjectionFailed(failure)

    def _ids(self, notification: Notification) -> dict[str, str]:
        """The ids of a failing event, for its log line (none if it cannot be read)."""
        try:
            return log_ids(self.store.mapper.to_domain_event(notification))
        except Exception:
            return {}

    def _park(self, tx: Tx, notification: Notification, why: str) -> None:
        DEAD_LETTERS.labels(self.name).inc()
        tx.execute(
            "INSERT INTO projection_dead_letters (name, generation, shard, position, topic, "
            "error, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                self.name,
                self.projection.generation,
                str(self.shard),
                notification.id,
                notification.topic,
                why,
                now_iso(),
            ),
        )


class Patience:
    """How a worker rides out a failing store: back off and retry the same batch, and give up
    (ProjectionFailed, naming the failure) only when it has failed for `seconds` on end."""

    def __init__(self, name: str, seconds: float = 60.0) -> None:
        self.name = name
        self.seconds = seconds
        self.failing_since: float | None = None
        self.pause = 0.05
        projection = name.partition(" shard ")[0]  # workers say "<name> shard K/N"
        self.batches = BATCH_EVENTS.labels(projection)
        self.retries = RETRIES.labels(projection)

    def step(self, runner: Runner, stop: threading.Event) -> int:
        """`runner.step()`, or 0 after waiting out a hiccup."""
        try:
            read = runner.step()
        except StoreHiccup as hiccup:
            self.wait_out(hiccup, stop)
            return 0
        self.failing_since, self.pause = None, 0.05
        if read:
            self.batches.observe(read)
        return read

    def wait_out(self, failure: Exception, stop: threading.Event) -> None:
        """Back off after a store failure, or raise ProjectionFailed if it has lasted."""
        now = time.monotonic()
        self.failing_since = self.failing_since or now
        if now - self.failing_since > self.seconds:
            raise ProjectionFailed(
                f"{self.name}: stores failing for over {self.seconds:.0f} s: {failure}"
            ) from failure
        self.retries.inc()
        log.warning(
            "store_hiccup", projection=self.name, retry_in=round(self.pause, 2), why=str(failure)
        )
        stop.wait(self.pause)
        self.pause = min(self.pause * 2, 2.0)
