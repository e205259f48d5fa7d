"""The read side as the API sees it: one database per read model, and fresh-stamped answers.

Every query answer carries three facts about its freshness, read in the same snapshot as the
data itself:

- `position`: the event-store position the read model reflects (every shard reached it);
- `as_of`: when the newest event the model has applied was recorded (null before any);
- `age_seconds`: the server's wall clock minus `as_of`. It is how old the newest change the
  answer reflects is, not how far behind the model is: on a quiet store it grows while the
  data is still complete. To know that an answer includes your own write, pass the position
  your command returned as `min_position`; `/readyz` reports how far each model lags.

API processes only read here; the workers that write these models run elsewhere
(`farmacy worker`), never inside an API process.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import asyncio
import base64
import binascii
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from ops.settings import Settings
from projections.city_catalogue import CityCatalogue
from projections.database import Database, Tx
from projections.freshness import ReadModelBehind
from projections.models import PROJECTIONS, open_database
from projections.projection import Projection

T = TypeVar("T")
P = TypeVar("P", bound=Projection)

WAIT_SECONDS = 2.0
"""How long a query with `min_position` waits for the model, at most."""
POOL_SIZES = {"venue_menu": 4, "fridge_stock": 3, "city_catalogue": 3}


class ReadModelNotBuilt(Exception):
    """A read model's tables do not exist yet: no worker has ever run for it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the {name} read model is not built yet; is its worker running?")
        self.name = name


class BadCursor(Exception):
    """A pagination cursor this API did not hand out."""


@dataclass(frozen=True)
class Fresh:
    """A query's value and how fresh it is."""

    value: Any
    position: int
    as_of: datetime | None

    @property
    def age_seconds(self) -> float | None:
        if self.as_of is None:
            return None
        return round(max(0.0, (datetime.now(UTC) - self.as_of).total_seconds()), 3)


@dataclass(frozen=True)
class ReadState:
    """Where a read model stands, read in one statement inside a query's snapshot.

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


@dataclass
class ReadSide:
    """A database per read model for this API process (closed by the app's lifespan)."""

    dbs: dict[str, Database]
    wait_seconds: float = WAIT_SECONDS  # how long a `min_position` read may wait
    _threads: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings, wait_seconds: float = WAIT_SECONDS) -> ReadSide:
        return cls(
            {
                name: open_database(settings, name, pool_size=POOL_SIZES.get(name, 2))
                for name in PROJECTIONS
            },
            wait_seconds,
        )

    def close(self) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        for db in self.dbs.values():
            db.close()

    def _readers(self) -> ThreadPoolExecutor:
        """Threads for reads that wait on a server: as many as the largest read model's pool
        has connections (POOL_SIZES). More would only queue for a connection, taking turns
        at the interpreter while they wait."""
        if self._threads is None:
            size = max(POOL_SIZES.values())
            self._threads = ThreadPoolExecutor(size, thread_name_prefix="farmacy-read")
        return self._threads

    def read(
        self,
        projection: type[P],
        read: Callable[[Tx, P], T],
        min_position: int | None,
    ) -> Fresh:
        """`read` on the model's active generation once it reached `min_position` (bounded);
        blocks its thread while it waits."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while True:
            found = self.attempt(projection, lambda tx, view, _: read(tx, view), min_position)
            if isinstance(found, Fresh):
                return found
            time.sleep(pause(deadline, delay, projection, found, min_position))
            delay = min(delay * 2, 0.05)

    async def read_async(
        self,
        projection: type[P],
        read: Callable[[Tx, P, ReadState], T],
        min_position: int | None,
        kept: Callable[[ReadState], T | None] | None = None,
    ) -> Fresh:
        """`read` (which also gets the model's `ReadState`) once the model reached
        `min_position` (bounded), waiting without holding the event loop. `kept` may answer
        from what this process kept for that exact state (see `attempt`).

        On SQLite a read is a few in-process calls that never wait for the worker's writes
        (WAL: readers see the last commit and take no lock), so it runs right here on the
        event loop: handing it to a thread would cost more than the read (a thread hop, and
        the GIL passed back and forth under load). On PostgreSQL every statement is a round
        trip, so it runs in a worker thread.
        """
        inline = self.dbs[projection.name].kind == "sqlite"
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.005
        while True:
            if inline:
                found = self.attempt(projection, read, min_position, kept)
            else:
                found = await loop.run_in_executor(
                    self._readers(), self.attempt, projection, read, min_position, kept
                )
            if isinstance(found, Fresh):
                return found
            await asyncio.sleep(pause(deadline, delay, projection, found, min_position))
            delay = min(delay * 2, 0.05)

    def attempt(
        self,
        projection: type[P],
        read: Callable[[Tx, P, ReadState], T],
        min_position: int | None,
        kept: Callable[[ReadState], T | None] | None = None,
    ) -> Fresh | int:
        """One snapshot: `read`'s answer stamped with the model's position and time, or only
        the position if it has not reached `min_position` yet.

        With `kept`, the model's state is read first on its own (one statement, consistent
        by itself), and if `kept` has the answer for exactly that state, that is the answer:
        on PostgreSQL one round trip instead of a transaction's three. Otherwise the snapshot
        reads the state again with the data.
        """
        db = self.dbs[projection.name]
        try:
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
                value = read(tx, projection(state.generation), state)
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as error:
            if "no such table" in str(error) or isinstance(error, psycopg.errors.UndefinedTable):
                raise ReadModelNotBuilt(projection.name) from error
            raise
        return stamped(value, state)


def stamped(value: Any, state: ReadState) -> Fresh:
    """`value` with the position and time of the state it was read at."""
    as_of = datetime.fromisoformat(state.event_at) if state.event_at else None
    return Fresh(value, state.position, as_of)


def pause(
    deadline: float, delay: float, projection: type[Projection], position: int, wanted: int | None
) -> float:
    """How long to sleep before reading again, or ReadModelBehind once the wait is over."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReadModelBehind(projection.name, position, wanted if wanted is not None else 0)
    return min(delay, left)


# ---- cursors: opaque to clients, the last item's sort key to us ------------------------------


def encode_cursor(*key: str) -> str:
    return base64.urlsafe_b64encode("\n".join(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, parts: int) -> tuple[str, ...] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("this cursor was not handed out by this API") from None
    key = tuple(raw.split("\n"))
    if len(key) != parts:
        raise BadCursor("this cursor was not handed out by this API")
    return key


def page(
    items: list[T], key: Callable[[T], tuple[str, ...]], parts: int, after: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The `limit` items after cursor `after` in a list sorted by `key`, and the next cursor."""
    start = decode_cursor(after, parts)
    chosen = [item for item in items if start is None or key(item) > start]
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return chosen, (encode_cursor(*key(chosen[-1])) if more else None)


# ---- reads the projections do not offer (yet): thin functions over their tables -------------


def venue_known(tx: Tx, view: Projection, venue_id: str) -> bool:
    return (
        tx.one(f"SELECT 1 FROM {view.t['fridges']} WHERE venue_id = ? LIMIT 1", (venue_id,))
        is not None
    )


def city_known(tx: Tx, view: CityCatalogue, city_id: str) -> bool:
    return (
        tx.one(f"SELECT 1 FROM {view.t['venues']} WHERE city_id = ? LIMIT 1", (city_id,))
        is not None
    )


def city_venues(
    tx: Tx, view: CityCatalogue, city_id: str, after: str | None, limit: int
) -> list[tuple[str, str]]:
    """(venue id, name) of a city in venue-id order, `limit` after venue id `after`."""
    rows = tx.rows(
        f"SELECT venue_id, name FROM {view.t['venues']} WHERE city_id = ? AND venue_id > ? "
        "ORDER BY venue_id LIMIT ?",
        (city_id, after or "", limit),
    )
    return [(venue_id, name) for venue_id, name in rows]
