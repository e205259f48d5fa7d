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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any, TypeVar, TypeVarTuple

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


Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


class CommandLane:
    """At most `size` commands at once, up to `queue` more waiting.

    Turns are taken in arrival order: the lane's `size` threads take submitted commands from
    one first-in-first-out queue. A command is handed over as the event loop's own future
    and settled from the thread with `call_soon_threadsafe`; `concurrent.futures` (a future
    with its own lock and condition, then chained to an asyncio one) cost each hand-off more
    and bought nothing here. The counts are only touched on the event loop, so they need no
    lock.
    """

    def __init__(self, size: int, queue: int) -> None:
        if size < 1 or queue < 0:
            raise ValueError(f"a command lane needs size >= 1 and queue >= 0, not {size}, {queue}")
        self.size = size
        self.queue = queue
        self._inside = 0  # running or waiting
        self._jobs: SimpleQueue[Job | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []  # started by the first command

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
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, contextvars.copy_context(), command, args))
        self._inside += 1
        COMMANDS_IN_LANE.inc()
        try:
            return await future
        finally:
            self._inside -= 1
            COMMANDS_IN_LANE.dec()

    def _start(self) -> None:
        self._threads = [
            threading.Thread(target=self._work, name=f"farmacy-command-{n}", daemon=True)
            for n in range(self.size)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, context, command, args = job
            if future.cancelled():  # its caller gave up before its turn: never run it
                continue
            try:
                result = context.run(command, *args)
            except BaseException as error:  # handed to the caller, raised there
                loop.call_soon_threadsafe(_fail, future, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result)

    def close(self) -> None:
        """Let the commands already taken finish, cancel those still waiting, and stop the
        threads (the app's shutdown; an app started again starts new ones)."""
        threads, self._threads = self._threads, []
        if not threads:
            return
        while True:
            try:
                job = self._jobs.get_nowait()
            except Empty:
                break
            if job is not None:
                loop, future = job[0], job[1]
                loop.call_soon_threadsafe(future.cancel)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # cancelled meanwhile: nobody is waiting for the answer
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


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
