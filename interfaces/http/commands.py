"""The command lane: how many commands one API process runs against the write side at once.

A command (place an order, record a delivery, ...) is a few reads and one or two appends,
each append holding the store's single write lock until its commit is on disk (SQLite's
writer; PostgreSQL's table lock in eventsourcing's recorder). With dozens of them in flight
in one process, the one holding that lock keeps losing the interpreter to the others, so
the lock is held longer and every command waits longer: on SQLite 32 threads placed fewer
orders per second than 1 or 2 (docs/benchmarks.md). So commands wait their turn here, in
arrival order, and only `size` of them run at once, sized to what the store can use.

The queue is bounded too: at a holiday peak a request that would wait behind `queue` others
is answered at once with 503 and `Retry-After`, instead of after seconds in a queue the
client has long given up on. Queries never take this lane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.to_thread
from prometheus_client import Counter, Gauge

T = TypeVar("T")
Args = TypeVarTuple("Args")

COMMANDS_SHED = Counter(
    "farmacy_commands_shed", "Commands answered 503 because too many were waiting their turn"
)
COMMANDS_WAITING = Gauge(
    "farmacy_commands_waiting", "Commands waiting for their turn in this process", ["lane"]
)


class CommandQueueFull(Exception):
    """Too many commands are waiting in this process; the caller may retry shortly."""

    retry_after_seconds = 1

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        super().__init__(f"{waiting} commands are already waiting in this server, try again")


class CommandLane:
    """At most `size` commands at once, up to `queue` more waiting in arrival order."""

    def __init__(self, size: int, queue: int, name: str = "commands") -> None:
        if size < 1 or queue < 0:
            raise ValueError(f"a command lane needs size >= 1 and queue >= 0, not {size}, {queue}")
        self.size = size
        self.queue = queue
        self._limiter = anyio.CapacityLimiter(size)
        self._waiting = COMMANDS_WAITING.labels(name)

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    async def run(self, command: Callable[[*Args], T], *args: *Args) -> T:
        """Run the blocking `command(*args)` in a worker thread when its turn comes."""
        waiting = self.waiting
        if self.running >= self.size and waiting >= self.queue:
            COMMANDS_SHED.inc()
            raise CommandQueueFull(waiting)
        self._waiting.inc()
        try:
            await self._limiter.acquire()
        finally:
            self._waiting.dec()
        try:
            return await anyio.to_thread.run_sync(command, *args)
        finally:
            self._limiter.release()
