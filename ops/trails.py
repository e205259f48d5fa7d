"""Workers that follow the event store from a checkpoint of their own: fulfilment, snapshots.

A trail is a projection with no tables: applying an event means acting on it (outside the
batch's transaction), and the checkpoint moves after the batch has been acted on. A crash
repeats actions, so every action must be idempotent. As for read models, one worker per
trail is active (advisory lock / file lock) and the others stand by.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import ClassVar

import structlog

from application.errors import TooBusy
from application.store import EventStore
from ops.read_models import open_databases
from ops.settings import Settings
from projections.database import Database
from projections.projection import Projection, Shard
from projections.runner import TRANSIENT, Patience, Runner
from projections.worker import POLL_INTERVAL, STANDBY_RETRY, shard_lock

log = structlog.get_logger(__name__)


TICK_TRANSIENT: tuple[type[Exception], ...] = (*TRANSIENT, TooBusy)


class Trail(Projection):
    """A projection that acts instead of writing rows."""

    tables: ClassVar[dict[str, str]] = {}
    policy = "stop"  # an action that keeps failing stops the worker, naming event and position
    # A command that lost to conflicts for its whole budget is tried again later.
    transient: ClassVar[tuple[type[Exception], ...]] = (TooBusy,)


def open_trail_database(settings: Settings, name: str, *, pool_size: int = 1) -> Database:
    """Where a trail keeps its checkpoint: beside the read models."""
    return open_databases(settings, [name], pool_size=pool_size)[name]


def follow(
    settings: Settings,
    store: EventStore,
    make: Callable[[int, Shard], Trail],
    stop: threading.Event,
    *,
    batch_size: int = 100,
    tick: tuple[float, Callable[[], None]] | None = None,
    db: Database | None = None,
) -> None:
    """Stand by until active, then apply the event store to the trail until `stop` is set.

    `tick` = (seconds, action): something to do every so often while active. `db`: where the
    trail's checkpoint lives, if the caller shares its pool (the caller then closes it).
    """
    name = make(1, Shard()).name
    trail = db or open_trail_database(settings, name)
    lock = shard_lock(trail, name, Shard())
    try:
        while not stop.is_set() and not lock.try_acquire():
            stop.wait(STANDBY_RETRY)
        if stop.is_set():
            return
        log.info("trail_active", trail=name)
        runner = Runner(store, trail, make, batch_size=batch_size)
        patience = Patience(name)
        next_tick = 0.0
        while not stop.is_set():
            read = patience.step(runner, stop)
            if tick is not None and time.monotonic() >= next_tick:
                try:
                    tick[1]()
                except TICK_TRANSIENT as failure:  # the next tick tries again
                    log.warning("trail_tick_failed", trail=name, error=str(failure))
                next_tick = time.monotonic() + tick[0]
            if read < batch_size:
                stop.wait(POLL_INTERVAL)
    finally:
        lock.release()
        if db is None:
            trail.close()
