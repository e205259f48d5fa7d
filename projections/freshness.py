"""Every answer says how fresh it is, and a reader who just wrote can wait for its write.

A query reads the active generation's checkpoints and its data in one snapshot, so the
position it reports is exactly the state it shows. With `min_position`, it polls the
checkpoint (bounded by `timeout`) until the model has reached that position. The HTTP API
reads through the same `attempt` and `pause` (interfaces/http/reading.py), on its own threads
or on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from projections.database import Database, Tx
from projections.projection import Projection

T = TypeVar("T")
P = TypeVar("P", bound=Projection)

WAIT_TIMEOUT = 2.0
"""How long a query waits, at most, for a `min_position` by default (seconds)."""
FIRST_PAUSE, LONGEST_PAUSE = 0.005, 0.05
"""Polling for a `min_position`: the first pause, doubled after each read, up to the longest."""


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A query's answer, the position (in the event store) it reflects, and `as_of`: when the
    newest event the model had applied was recorded (None before any)."""

    value: T
    position: int
    as_of: datetime | None = None

    @property
    def age_seconds(self) -> float | None:
        """How old the newest change this answer reflects is (not how far behind the model
        is: on a quiet store it grows while the data is complete)."""
        if self.as_of is None:
            return None
        return round(max(0.0, (datetime.now(UTC) - self.as_of).total_seconds()), 3)


class Reader(Protocol):
    """What runs a read model's queries: the API's `ReadSide` (interfaces/http/reading.py).
    Each model's query object (`FridgeStockQueries`, ...) asks it, so tests and production
    go through the same door."""

    def read(
        self, projection: type[P], read: Callable[[Tx, P], T], min_position: int | None
    ) -> Answer[T]:
        """`read` once the model reached `min_position` (bounded), blocking its thread."""
        ...

    async def read_async(
        self,
        projection: type[P],
        read: Callable[[Tx, P, ReadState], T],
        min_position: int | None,
        kept: Callable[[ReadState], T | None] | None = None,
    ) -> Answer[T]:
        """The same without holding the event loop; `kept` may answer from memory."""
        ...


class ReadModelBehind(Exception):
    """The read model did not reach the wanted position in time (HTTP: 503, retry)."""

    def __init__(self, name: str, position: int, wanted: int) -> None:
        super().__init__(f"{name} is at position {position}, not yet at {wanted}")
        self.name = name
        self.position = position
        self.wanted = wanted


@dataclass(frozen=True)
class ReadState:
    """Where a read model stands, read in one statement.

    `position` is what every shard of the active generation reached (what answers report),
    `event_at` the oldest of their newest events' times (an answer's `as_of`), and `key` names
    the exact state of the model's tables: a worker moves its shard's checkpoint in the same
    transaction as the rows it wrote, and a rebuild switches the generation in one, so two
    reads with the same key see the same rows (whatever `now` they compute with).
    """

    generation: int
    position: int
    event_at: str | None
    key: tuple[Any, ...]


STATE_QUERY = (
    "SELECT a.generation, c.shard, c.position, c.event_at FROM (SELECT COALESCE("
    "(SELECT g.active FROM projection_generations g WHERE g.name = ?), 1) AS generation) a "
    "LEFT JOIN projection_checkpoints c ON c.name = ? AND c.generation = a.generation"
)


def read_state(tx: Tx, name: str) -> ReadState:
    """The active generation and its checkpoints: one statement instead of three."""
    rows = tx.rows(STATE_QUERY, (name, name))
    generation = int(rows[0][0])
    shards = sorted((str(shard), int(position)) for _, shard, position, _ in rows if shard)
    moments = [event_at for *_, event_at in rows if event_at is not None]
    return ReadState(
        generation,
        min((position for _, position in shards), default=0),
        min(moments) if moments else None,
        (generation, tuple(shards)),
    )


def attempt(
    db: Database,
    projection: type[P],
    read: Callable[[Tx, P, ReadState], T],
    min_position: int | None,
    kept: Callable[[ReadState], T | None] | None = None,
) -> Answer[T] | int:
    """One snapshot: `read`'s answer stamped with the model's position and time, or only
    the position if it has not reached `min_position` yet.

    With `kept`, the model's state is read first on its own (one statement, consistent by
    itself), and if `kept` has the answer for exactly that state, that is the answer: on
    PostgreSQL one round trip instead of a transaction's three. Otherwise the snapshot reads
    the state again with the data.
    """
    if kept is not None:
        with db.statement() as tx:
            state = read_state(tx, projection.name)
        if min_position is not None and state.position < min_position:
            return state.position
        value = kept(state)
        if value is not None:
            return stamped(value, state)
    with db.snapshot() as tx:
        state = read_state(tx, projection.name)
        if min_position is not None and state.position < min_position:
            return state.position
        return stamped(read(tx, projection(state.generation), state), state)


class ReadsInFlight:
    """One database read per key at a time in this process: a venue's menu, a city's, a
    fridge's stock.

    Under a stream of orders every poll shows a new version of each key being ordered from,
    and every request for it that came in before the first read was back read the same answer
    again; those reads queued for the readers' threads while more came in (measured on the
    venue menu: a third as many reads again, docs/benchmarks.md). A request that needs no
    particular position and finds its key's read in flight waits for it, then answers as it
    would have from memory after it (`again`: by the same freshness rule), or reads for
    itself if that read turned out older than what it must show. A read is a task of its own,
    so a caller that goes away does not cancel it for the others.
    """

    def __init__(self) -> None:
        self._reading: dict[str, asyncio.Task[Any]] = {}

    async def read(
        self,
        key: str,
        read: Callable[[], Awaitable[T]],
        again: Callable[[], T | None],
        *,
        alone: bool = False,
    ) -> T:
        """`read()` for `key`, or the outcome of the read of `key` in flight (`again()`);
        `alone`: read for itself whatever is in flight (a `min_position` to wait for)."""
        if alone:
            return await read()
        loop = asyncio.get_running_loop()
        reading = self._reading.get(key)
        if reading is None or reading.get_loop() is not loop:
            mine: asyncio.Task[T] = loop.create_task(_awaited(read))
            self._reading[key] = mine
            mine.add_done_callback(partial(self._done, key))
            return await asyncio.shield(mine)
        await asyncio.shield(reading)
        found = again()
        return found if found is not None else await read()

    def _done(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._reading.get(key) is task:
            del self._reading[key]
        if not task.cancelled():
            task.exception()  # every joiner may have gone: its error is theirs, not the loop's


async def _awaited(read: Callable[[], Awaitable[T]]) -> T:
    return await read()


def stamped(value: T, state: ReadState) -> Answer[T]:
    """`value` with the position and time of the state it was read at."""
    as_of = datetime.fromisoformat(state.event_at) if state.event_at else None
    return Answer(value, state.position, as_of)


def pause(deadline: float, delay: float, name: str, position: int, wanted: int | None) -> float:
    """How long to sleep before reading again, or ReadModelBehind once the wait is over."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReadModelBehind(name, position, wanted if wanted is not None else 0)
    return min(delay, left)


def answer(
    db: Database,
    projection: type[P],
    read: Callable[[Tx, P], T],
    min_position: int | None = None,
    timeout: float = WAIT_TIMEOUT,
) -> Answer[T]:
    """Run `read` on the active generation, once it reflects `min_position` (if given)."""
    deadline = time.monotonic() + timeout
    delay = FIRST_PAUSE
    while True:
        found = attempt(db, projection, lambda tx, view, _: read(tx, view), min_position)
        if isinstance(found, Answer):
            return found
        time.sleep(pause(deadline, delay, projection.name, found, min_position))
        delay = min(delay * 2, LONGEST_PAUSE)
