"""The command lane: how many commands one API process runs against the write side at once.

A command (place an order, record a delivery, ...) is mostly Python around one append. On
SQLite each append holds the file's single write lock until its commit is on disk, and with
dozens of commands in flight in one process the one holding that lock keeps losing the
interpreter to the others, so every command waits longer: 32 threads placed fewer orders
per second than 1 or 2 (docs/benchmarks.md). On PostgreSQL appends share no lock
(ops/postgres_events.py), but more threads than cores still only take turns. So commands
wait their turn here, in arrival order, and only `size` of them run at once, each in one of
the lane's own threads.

The queue is bounded too: at a holiday peak a request that would wait behind `queue` others
is answered at once with 503 and `Retry-After`, instead of after seconds in a queue the
client has long given up on. Queries never take this lane.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar, TypeVarTuple

from prometheus_client import Counter, Gauge

from ops.root import WriteSide

T = TypeVar("T")
Args = TypeVarTuple("Args")

COMMANDS_SHED = Counter(
    "farmacy_commands_shed", "Commands answered 503 because too many were waiting their turn"
)
COMMANDS_IN_LANE = Gauge(
    "farmacy_commands_in_lane", "Commands running or waiting for their turn in this process"
)


class CommandQueueFull(Exception):
    """Too many commands are waiting in this process; the caller may retry shortly."""

    retry_after_seconds = 1

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        super().__init__(f"{waiting} commands are already waiting in this server, try again")


class CommandLane:
    """At most `size` commands at once, up to `queue` more waiting.

    Turns are taken in arrival order: the lane's threads take submitted commands first in,
    first out. The counts are only touched on the event loop, so they need no lock.
    """

    def __init__(self, size: int, queue: int) -> None:
        if size < 1 or queue < 0:
            raise ValueError(f"a command lane needs size >= 1 and queue >= 0, not {size}, {queue}")
        self.size = size
        self.queue = queue
        self._inside = 0  # running or waiting
        self._threads: ThreadPoolExecutor | None = None  # started by the first command

    @property
    def running(self) -> int:
        return min(self._inside, self.size)

    @property
    def waiting(self) -> int:
        return max(self._inside - self.size, 0)

    async def run(self, command: Callable[[*Args], T], *args: *Args) -> T:
        """Run the blocking `command(*args)` in one of the lane's threads when its turn comes.

        The command sees the request's context (its log fields) as if it ran inline.
        """
        if self._inside >= self.size + self.queue:
            COMMANDS_SHED.inc()
            raise CommandQueueFull(self.waiting)
        context = contextvars.copy_context()
        call = functools.partial(context.run, command, *args)
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.size, thread_name_prefix="farmacy-command")
        self._inside += 1
        COMMANDS_IN_LANE.inc()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)
        finally:
            self._inside -= 1
            COMMANDS_IN_LANE.dec()

    def close(self) -> None:
        """Let the commands already taken finish and stop the threads (the app's shutdown;
        an app started again starts new ones)."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Commands:
    """What a command route takes: the write side and the lane to reach it by.

    One dependency rather than two: Litestar resolves two or more of a route's dependencies
    in an anyio task group, which cost an order ~15 % of its time on the event loop.
    """

    side: WriteSide
    lane: CommandLane

    async def run(self, command: Callable[[*Args], T], *args: *Args) -> T:
        return await self.lane.run(command, *args)
