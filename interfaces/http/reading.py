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

from __future__ import annotations

import asyncio
import base64
import binascii
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import psycopg
import structlog
from prometheus_client import Counter

from ops import connections
from projections.city_catalogue import CityCatalogue, CityCatalogueQueries
from projections.database import Database, Tx
from projections.freshness import (
    FIRST_PAUSE,
    LONGEST_PAUSE,
    WAIT_TIMEOUT,
    Answer,
    ReadState,
    answer,
    attempt,
    pause,
)
from projections.fridge_stock import FridgeStock, FridgeStockQueries
from projections.models import close_databases
from projections.order_queries import OrdersQueries
from projections.projection import Projection
from projections.refill_plan import RefillPlanQueries
from projections.venue_menu import MenuKeeper, VenueMenu, VenueMenuQueries
from projections.versions import Versioned, VersionsSeen, VersionWatch

T = TypeVar("T")
P = TypeVar("P", bound=Projection)
log = structlog.get_logger()

POLL_SECONDS = 0.05
"""How often an API process reads a versioned model's versions (one statement each)."""
TRUSTED_POLL_SECONDS = 1.0
"""A poll older than this (its thread stuck, the database away) answers nothing from memory."""
VERSIONS_THREAD = "farmacy-versions"
"""The thread that polls the versioned models (and reads changed venue menus again)."""
IDLE_SECONDS = 300.0
"""A model nobody asked of for this long is not polled until it is asked again (that first
answer then reads the database, as its poll is no longer trusted): an API process whose
clients never read city menus or fridge stock spends no statements following them."""
VERSIONED: tuple[type[Versioned], ...] = (VenueMenu, CityCatalogue, FridgeStock)
"""The models whose answers an API process keeps while their keys' versions stand."""
DATABASE_READS = Counter(
    "farmacy_read_model_reads",
    "Reads of a read model's database that requests made (each a statement or a snapshot)",
    ["projection"],
)

MENUS_KEPT_CURRENT = Counter(
    "farmacy_menus_kept_current",
    "Snapshots in which a poll read again the changed venue menus asked for lately",
)


class ReadModelNotBuilt(Exception):
    """A read model's tables do not exist yet: no worker has ever run for it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the {name} read model is not built yet; is its worker running?")
        self.name = name


class BadCursor(Exception):
    """A pagination cursor this API did not hand out."""


class PositionNotWritten(Exception):
    """`min_position` is beyond anything the event store has written: no wait can reach it,
    since nobody was ever handed that position (HTTP 422)."""

    def __init__(self, wanted: int, head: int) -> None:
        super().__init__(
            f"min_position {wanted} is beyond the newest position the store has written ({head})"
        )
        self.wanted = wanted
        self.head = head


Fresh = Answer[Any]
"""A query's value and how fresh it is (`position`, `as_of`, `age_seconds`)."""


@dataclass
class ReadSide:
    """A database per read model for this API process (closed by the app's lifespan); on
    PostgreSQL they share one pool of `connections.API_READ_POOL` connections.

    Routes ask each model through its query object (`venue_menu`, `city_catalogue`,
    `fridge_stock`, `refill_plan`, `orders`), which reads through `read` or `read_async`."""

    dbs: dict[str, Database]
    wait_seconds: float = WAIT_TIMEOUT  # how long a `min_position` read may wait
    head: Callable[[], int | None] | None = None  # the event store's newest position
    _threads: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _watching: threading.Event | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.venue_menu = VenueMenuQueries(self)
        self.city_catalogue = CityCatalogueQueries(self)
        self.fridge_stock = FridgeStockQueries(self)
        self.refill_plan = RefillPlanQueries(self)
        self.orders = OrdersQueries(self)

    def watch_menus(
        self,
        every: float = POLL_SECONDS,
        menus: MenuKeeper[Any] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Follow the versioned models' per-key versions (venue menus, city menus, fridge
        stock) in a thread of this process, one statement per model every `every` seconds
        while it is being asked, so an answer whose key has not changed comes from memory
        (`VenueMenuQueries`, `CityCatalogueQueries.menu_now`, `FridgeStockQueries.stock_now`).
        With `menus` (the API's menu cache), a poll that shows venues changed reads the
        changed menus asked for lately in one snapshot before it is trusted
        (`VenueMenuQueries.keep_current`). Stopped by `close`."""
        if self._watching is not None:
            return
        followed = {
            model.name: Followed(VersionWatch(self.dbs[model.name], model))
            for model in VERSIONED
            if model.name in self.dbs
        }
        if not followed:
            return
        stop = threading.Event()

        def follow() -> None:
            while True:
                for each in followed.values():
                    each.poll()
                if stop.wait(every):
                    return

        self._watching = stop
        if VenueMenu.name in followed:
            self.venue_menu.seen = followed[VenueMenu.name].seen
            if menus is not None:
                db = self.dbs[VenueMenu.name]
                now = clock or (lambda: datetime.now(UTC))
                followed[VenueMenu.name].watch.ahead = partial(self._keep_current, db, menus, now)
        if CityCatalogue.name in followed:
            self.city_catalogue.seen = followed[CityCatalogue.name].seen
        if FridgeStock.name in followed:
            self.fridge_stock.seen = followed[FridgeStock.name].seen
        threading.Thread(target=follow, name=VERSIONS_THREAD, daemon=True).start()

    def _keep_current(
        self,
        db: Database,
        menus: MenuKeeper[Any],
        clock: Callable[[], datetime],
        seen: VersionsSeen,
    ) -> None:
        """The changed menus a poll saw, read again; a failure leaves them to their requests."""
        try:
            with built(VenueMenu):
                if self.venue_menu.keep_current(db, seen, menus, clock()):
                    MENUS_KEPT_CURRENT.inc()
        except Exception as error:  # the database away: requests read for themselves
            log.info("menus not kept current", reason=str(error))

    def close(self) -> None:
        if self._watching is not None:
            self._watching.set()
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        close_databases(self.dbs)

    def _readers(self) -> ThreadPoolExecutor:
        """Threads for reads that wait on a server: as many as the read-model pool has
        connections. More would only queue for a connection, taking turns at the
        interpreter while they wait."""
        if self._threads is None:
            size = connections.API_READ_POOL
            self._threads = ThreadPoolExecutor(size, thread_name_prefix="farmacy-read")
        return self._threads

    def read(
        self,
        projection: type[P],
        read: Callable[[Tx, P], T],
        min_position: int | None,
    ) -> Answer[T]:
        """`read` on the model's active generation once it reached `min_position` (bounded);
        blocks its thread while it waits."""
        db = self.dbs[projection.name]
        DATABASE_READS.labels(projection.name).inc()
        with built(projection):
            if min_position is not None and self.head is not None:
                found = attempt(db, projection, lambda tx, view, _: read(tx, view), min_position)
                if isinstance(found, Answer):
                    return found
                self.reachable(min_position)
            return answer(db, projection, read, min_position, self.wait_seconds)

    def reachable(self, min_position: int) -> None:
        """PositionNotWritten unless the store has written `min_position`: asked only when a
        model has not reached it yet, so a read that needs no wait costs nothing more."""
        if self.head is None:
            return
        head = self.head() or 0
        if min_position > head:
            raise PositionNotWritten(min_position, head)

    async def read_async(
        self,
        projection: type[P],
        read: Callable[[Tx, P, ReadState], T],
        min_position: int | None,
        kept: Callable[[ReadState], T | None] | None = None,
    ) -> Answer[T]:
        """`read` (which also gets the model's `ReadState`) once the model reached
        `min_position` (bounded), waiting without holding the event loop. `kept` may answer
        from what this process kept for that exact state (see `freshness.attempt`).

        On SQLite a read is a few in-process calls that never wait for the worker's writes
        (WAL: readers see the last commit and take no lock), so it runs right here on the
        event loop: handing it to a thread would cost more than the read (a thread hop, and
        the GIL passed back and forth under load). On PostgreSQL every statement is a round
        trip, so it runs in a worker thread.
        """
        db = self.dbs[projection.name]
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.wait_seconds
        delay = FIRST_PAUSE
        while True:
            DATABASE_READS.labels(projection.name).inc()
            with built(projection):
                if db.kind == "sqlite":
                    found = attempt(db, projection, read, min_position, kept)
                else:
                    found = await loop.run_in_executor(
                        self._readers(), attempt, db, projection, read, min_position, kept
                    )
            if isinstance(found, Answer):
                return found
            if delay == FIRST_PAUSE and min_position is not None:
                if db.kind == "sqlite":
                    self.reachable(min_position)
                else:
                    await loop.run_in_executor(self._readers(), self.reachable, min_position)
            await asyncio.sleep(pause(deadline, delay, projection.name, found, min_position))
            delay = min(delay * 2, LONGEST_PAUSE)


class Followed:
    """One model's versions as this process follows them: polled while asked (`seen`)."""

    def __init__(self, watch: VersionWatch) -> None:
        self.watch = watch
        self.polled = 0.0  # time.monotonic() of the last poll that succeeded
        self.asked = 0.0  # of the last `seen`
        self.failure = ""

    def poll(self) -> None:
        if time.monotonic() - self.asked > IDLE_SECONDS:
            return
        try:
            self.watch.poll()
            self.polled = time.monotonic()
            self.failure = ""
        except Exception as error:  # not built yet, or the database is away
            self.watch.seen = None
            if str(error) != self.failure:
                self.failure = str(error)
                log.info("versions unread", model=self.watch.name, reason=self.failure)

    def seen(self) -> VersionsSeen | None:
        """The last poll, if recent enough to trust."""
        now = time.monotonic()
        self.asked = now
        return self.watch.seen if now - self.polled < TRUSTED_POLL_SECONDS else None


@contextmanager
def built(projection: type[Projection]) -> Iterator[None]:
    """A read of a model whose tables no worker has created yet is ReadModelNotBuilt."""
    try:
        yield
    except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as error:
        if "no such table" in str(error) or isinstance(error, psycopg.errors.UndefinedTable):
            raise ReadModelNotBuilt(projection.name) from error
        raise


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
