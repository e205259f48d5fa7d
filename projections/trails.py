"""Trails: followers of the event store that act instead of writing rows (fulfilment, snapshots).

A trail is a projection with no tables: it gathers a batch's events and acts on them together
(outside the batch's transaction) before the checkpoint moves past them. A crash
repeats actions, so every action must be idempotent. As for read models, one follower per
trail is active (advisory lock / file lock, projections/worker.py) and the others stand by.

Whoever runs a trail hands `follow` the store and the database its checkpoint lives in (the
composition root, ops/root.py), and the action: a trail knows nothing of what it acts for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import structlog

from projections.database import Database, Tx
from projections.projection import Projection, Shard
from projections.runner import TRANSIENT, Patience, Runner
from projections.source import EventSource
from projections.worker import POLL_INTERVAL, STANDBY_RETRY, shard_lock

log = structlog.get_logger(__name__)

Seen = tuple[object, int]
"""An event and its position in the store."""

Act = Callable[[Sequence[Seen]], None]
"""What a trail does with a batch of events, in the store's order."""


class Trail(Projection):
    """A projection that acts instead of writing rows: `act([(event, position), ...])` per
    batch, at `flush`, so the checkpoint moves only once the batch was acted on."""

    tables: ClassVar[dict[str, str]] = {}
    policy = "stop"  # an action that keeps failing stops the follower, naming event and position

    def __init__(self, act: Act, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.act = act
        self.batch: list[Seen] = []

    def apply(self, event: object, tx: Tx, position: int) -> None:
        self.batch.append((event, position))

    def flush(self, tx: Tx) -> None:
        batch, self.batch = self.batch, []
        if batch:
            self.act(batch)

    def forget(self) -> None:
        self.batch = []


def trail_named(name: str, transient: tuple[type[Exception], ...] = ()) -> type[Trail]:
    """The trail class called `name` (its checkpoint's name), whose actions may fail with
    `transient` (tried again later, like a store's hiccup) without stopping it."""
    return type(f"Trail[{name}]", (Trail,), {"name": name, "transient": transient})


def follow(
    store: EventSource,
    db: Database,
    name: str,
    act: Act,
    stop: threading.Event,
    *,
    transient: tuple[type[Exception], ...] = (),
    batch_size: int = 100,
    tick: tuple[float, Callable[[], None]] | None = None,
) -> None:
    """Stand by until active, then `act` on the store's events until `stop` is set.

    `db` holds the trail's checkpoint (the caller opens and closes it). `transient`: failures
    of an action, or of `tick`, that are tried again later. `tick` = (seconds, action):
    something to do every so often while active.
    """
    trail = trail_named(name, transient)
    lock = shard_lock(db, name, Shard())
    try:
        while not stop.is_set() and not lock.try_acquire():
            stop.wait(STANDBY_RETRY)
        if stop.is_set():
            return
        log.info("trail_active", trail=name)
        runner = Runner(
            store,
            db,
            lambda generation, shard: trail(act, generation, shard),
            batch_size=batch_size,
        )
        patience = Patience(name)
        tick_transient = (*TRANSIENT, *transient)
        next_tick = 0.0
        while not stop.is_set():
            read = patience.step(runner, stop)
            if tick is not None and time.monotonic() >= next_tick:
                try:
                    tick[1]()
                except tick_transient as failure:  # the next tick tries again
                    log.warning("trail_tick_failed", trail=name, error=str(failure))
                next_tick = time.monotonic() + tick[0]
            if read < batch_size:
                stop.wait(POLL_INTERVAL)
    finally:
        lock.release()
