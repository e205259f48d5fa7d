"""A projection worker: one active per projection and shard, the others wait as hot standbys.

The lock that makes a worker active is a PostgreSQL advisory lock (held by a connection of its
own, so it goes when the process dies) or, for SQLite, a file lock beside the projection's
file (an OS lock, also released by a dying process). A standby tries again every half second.
The active worker polls the event store, applies batches, and stops cleanly at a batch
boundary when asked (SIGTERM). Its checkpoint survives it, so a restart resumes there.

Every worker keeps a row in `projection_workers` (role and a heartbeat) for `status`.

`run_workers` runs a worker per projection as threads of one process (`farmacy worker`): they
share one event store and one read-model pool, which the composition root (ops/root.py)
opens, sized for how many they are (ops/connections.py), and closes; and what they read of
the store, which one of them reads for all (projections/shared_log.py).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import filelock
import psycopg
import structlog

from projections.database import Database, PostgresDatabase, SQLiteDatabase
from projections.models import projection_named
from projections.projection import Shard, create_bookkeeping, now_iso
from projections.runner import (
    BATCH_SIZE,
    TRANSIENT,
    GenerationSwitched,
    Patience,
    ProjectionFailed,
    Runner,
)
from projections.shared_log import SharedLog
from projections.source import EventSource

log = structlog.get_logger("farmacy.projections")

POLL_INTERVAL = 0.05
"""Seconds an idle worker waits before asking the event store again."""
STANDBY_RETRY = 0.5
HEARTBEAT_EVERY = 1.0


class ShardLock(ABC):
    """Whoever holds it is the one active worker of a projection shard."""

    @abstractmethod
    def try_acquire(self) -> bool: ...

    @abstractmethod
    def release(self) -> None: ...


class AdvisoryLock(ShardLock):
    """A session-level PostgreSQL advisory lock on a connection of its own."""

    def __init__(self, db: PostgresDatabase, name: str, shard: Shard) -> None:
        self.key = db.lock_key(f"worker:{name}:{shard}")
        self.conn = psycopg.connect(db.dsn, autocommit=True, connect_timeout=5)

    def try_acquire(self) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        self.conn.close()  # closing ends the session, and with it the lock


class FileLock(ShardLock):
    """An OS file lock beside the projection's SQLite file."""

    def __init__(self, db: SQLiteDatabase, name: str, shard: Shard) -> None:
        path = Path(f"{db.path}.shard-{shard.index}-of-{shard.count}.lock")
        self.lock = filelock.FileLock(str(path), thread_local=False)

    def try_acquire(self) -> bool:
        try:
            self.lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        return True

    def release(self) -> None:
        self.lock.release(force=True)


def shard_lock(db: Database, name: str, shard: Shard) -> ShardLock:
    if isinstance(db, PostgresDatabase):
        return AdvisoryLock(db, name, shard)
    assert isinstance(db, SQLiteDatabase)
    return FileLock(db, name, shard)


class Worker:
    """Runs one projection shard until `stop` is set: standby, then active."""

    def __init__(
        self,
        name: str,
        shard: Shard,
        stop: threading.Event,
        *,
        store: EventSource,
        db: Database,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        """`store` and `db` are the caller's (the composition root opens them) and stay open."""
        self.name = name
        self.shard = shard
        self.stop = stop
        self.batch_size = batch_size
        self.projection = projection_named(name)
        self.db = db
        self.store = store
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._beat_at = 0.0
        self._role = ""
        self.patience = Patience(f"{name} shard {shard}")
        while not stop.is_set():
            try:
                with self.db.transaction() as tx:
                    create_bookkeeping(tx)
                break
            except TRANSIENT as failure:  # another process is setting the file up right now
                self.patience.wait_out(failure, stop)

    def run(self) -> None:
        """Wait to become active, then keep the shard up to date. Raises ProjectionFailed."""
        lock = shard_lock(self.db, self.name, self.shard)
        try:
            while not self.stop.is_set():
                if lock.try_acquire():
                    log.info("projection_active", projection=self.name, shard=str(self.shard))
                    self._run_active()
                    return
                self._heartbeat("standby")
                self.stop.wait(STANDBY_RETRY)
        finally:
            self._leave()
            lock.release()

    def _run_active(self) -> None:
        patience = self.patience
        runner = self._runner(patience)
        while runner is not None and not self.stop.is_set():
            self._heartbeat("running")
            try:
                read = patience.step(runner, self.stop)
            except GenerationSwitched:
                runner = self._runner(patience)
                continue
            except ProjectionFailed:
                self._heartbeat("failed", force=True)
                raise
            if read < self.batch_size:
                self.stop.wait(POLL_INTERVAL)

    def _runner(self, patience: Patience) -> Runner | None:
        """A runner on the active generation (None if stopped while the stores were down)."""
        while not self.stop.is_set():
            try:
                return Runner(
                    self.store, self.db, self.projection, self.shard, batch_size=self.batch_size
                )
            except TRANSIENT as failure:
                patience.wait_out(failure, self.stop)
        return None

    def _heartbeat(self, role: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and role == self._role and now - self._beat_at < HEARTBEAT_EVERY:
            return
        self._beat_at, self._role = now, role
        try:
            self._write_heartbeat(role)
        except TRANSIENT as failure:  # a missed heartbeat is not worth stopping for
            log.warning(
                "heartbeat_not_recorded",
                projection=self.name,
                shard=str(self.shard),
                why=str(failure),
            )

    def _write_heartbeat(self, role: str) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO projection_workers (name, shard, worker, role, seen_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, shard, worker) DO UPDATE SET "
                "role = excluded.role, seen_at = excluded.seen_at",
                (self.name, str(self.shard), self.identity, role, now_iso()),
            )

    def _leave(self) -> None:
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "DELETE FROM projection_workers WHERE name = ? AND shard = ? AND worker = ? "
                    "AND role <> 'failed'",
                    (self.name, str(self.shard), self.identity),
                )
        except Exception:  # leaving is best effort: status ages stale rows out anyway
            log.warning("worker_row_not_cleared", projection=self.name, shard=str(self.shard))


def run_workers(
    store: EventSource,
    dbs: Mapping[str, Database],
    names: list[str],
    shard: Shard,
    stop: threading.Event,
    **options: Any,
) -> list[str]:
    """Run a worker per projection (threads of this process) until `stop`; their errors.
    The threads share `store` and the databases `dbs` (by projection name), which stay open,
    and the notifications any of them read (`SharedLog`)."""
    errors: list[str] = []
    if len(names) > 1:
        store = SharedLog(store)

    def work(name: str) -> None:
        try:
            Worker(name, shard, stop, store=store, db=dbs[name], **options).run()
        except Exception as error:
            errors.append(str(error))
            log.error("projection_stopped", projection=name, shard=str(shard), why=str(error))

    threads = [threading.Thread(target=work, args=(name,), name=name) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
