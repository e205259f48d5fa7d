"""The composition root: the one module that knows every part, and builds them from settings.

Every process starts here. The API asks it for its write side and read models
(`Root.api_write_side`, `Root.api_read_models`); the `farmacy` commands for a write side,
the event store or a read model's database; and every long-running process is started by
`Root.run(process, stop)` from the table `PROCESSES`: a worker per read model
(projections/worker.py), the fulfilment process manager (application/fulfilment_runner.py)
and the snapshot worker (application/snapshots.py). Each process's pools are sized by its
connection budget (ops/connections.py).

A test replaces any part with a fake: `Root(settings, clock=..., payments=..., store=...)`.
Nothing below imports this module: domain/, application/ and projections/ are handed what
they need.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog

from application.catalogue import Catalogue
from application.clock import Clock, utc_now
from application.errors import StoreUnavailable
from application.expiry import Expiry, run_expiry
from application.follow import Follow
from application.fridge_cloud import Poller, run_poller
from application.fridge_writer import FridgeWriter
from application.fulfilment import Fulfilment, Overdue
from application.fulfilment_runner import run_fulfilment
from application.orders import Ordering
from application.payments import PaymentProcessor
from application.prices import PriceList
from application.promotions import Promotions
from application.snapshots import run_snapshots
from application.stock import Stock
from application.store import EventStore
from domain.order import NoShowPolicy
from interfaces.feed.jetstream import DUPLICATE_WINDOW, Layout
from interfaces.feed.relay import run_relay
from interfaces.fridge_cloud import VendorCounts
from interfaces.payments.http_processor import HttpProcessor
from ops import connections, metrics
from ops.connections import Budget
from ops.payment_simulator.processor import build_simulator, serve
from ops.settings import Settings
from ops.stores import describe, event_store_env, schema_creation_lock
from projections.database import Database, PostgresDatabase, SQLiteDatabase
from projections.feed import Feed, FeedQueries, mark_relayed
from projections.models import PROJECTIONS, close_databases, projection_named
from projections.pickup_deadlines import StoredPickupDeadlines
from projections.projection import Shard
from projections.reservations import ReservationQueries, Reservations
from projections.runner import prepare
from projections.trails import follow
from projections.worker import run_workers

RELAY_READS = 2
"""The relay's read-model connections: one reads the feed, one marks its progress."""


@dataclass
class WriteSide:
    """Everything that appends events, sharing one store and one writer per fridge."""

    settings: Settings
    store: EventStore
    writer: FridgeWriter
    catalogue: Catalogue
    prices: PriceList
    stock: Stock
    ordering: Ordering
    promotions: Promotions
    clock: Clock = field(default=utc_now)
    owns_store: bool = True
    """False when the store was handed in (a test's): whoever opened it closes it."""

    def close(self) -> None:
        if self.owns_store:
            self.store.close()


def open_event_store(settings: Settings, extra_env: dict[str, str] | None = None) -> EventStore:
    """Connect to the configured store, or raise StoreUnavailable naming the setting."""
    env = {**event_store_env(settings), **(extra_env or {})}
    try:
        with schema_creation_lock(settings):
            store = EventStore(env=env)
        store.position()  # prove the store answers now, not at the first customer's order
    except Exception as error:  # any driver error: the message matters, not its class
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if read_only_data_dir(settings):  # SQLite says only "unable to open database file"
            first_line = f"{settings.data_dir} is read-only ({first_line})"
        raise StoreUnavailable(f"{describe(settings)} is unavailable: {first_line}") from error
    return store


def read_only_data_dir(settings: Settings) -> bool:
    """SQLite's data directory exists but cannot be written (SQLite writes beside its
    files, its journal and shared memory, even to read)."""
    data_dir = settings.data_dir
    return settings.store == "sqlite" and data_dir.is_dir() and not os.access(data_dir, os.W_OK)


def build_write_side(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    extra_env: dict[str, str] | None = None,
    store: EventStore | None = None,
) -> WriteSide:
    """The write side over `store`, or over a store opened here (closed by `close`)."""
    shared = store or open_event_store(settings, extra_env)
    writer = FridgeWriter(shared)
    catalogue = Catalogue(shared)
    prices = PriceList(shared)
    return WriteSide(
        settings=settings,
        store=shared,
        writer=writer,
        catalogue=catalogue,
        prices=prices,
        stock=Stock(writer, catalogue, clock),
        ordering=Ordering(
            shared,
            writer,
            catalogue,
            clock,
            prices,
            payment_window=settings.payment_window,
            pickup_window=settings.pickup_window,
        ),
        promotions=Promotions(shared, catalogue, clock),
        clock=clock,
        owns_store=store is None,
    )


def missing_store(settings: Settings) -> str | None:
    """Why there is no event store where `settings` point, or None if there is one; looked
    at without creating one. StoreUnavailable if the PostgreSQL server does not answer."""
    if settings.store == "sqlite":
        events = settings.data_dir / "events.sqlite"
        if not events.is_file():
            return (
                f"no event store at {events}: is FARMACY_DATA_DIR right? "
                "(`farmacy run` or `farmacy seed-demo` creates one)"
            )
    elif settings.store == "postgres":
        schema = settings.postgres_schema or "public"
        try:
            with psycopg.connect(settings.postgres_dsn or "", connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT to_regclass(%s)", (f'"{schema}".{EventStore.name}_events',)
                ).fetchone()
        except psycopg.Error as error:
            raise StoreUnavailable(f"{describe(settings)} is unavailable: {error}") from None
        if row is None or row[0] is None:
            return f"no event store in schema {schema} of {describe(settings)}"
    return None


def open_databases(
    settings: Settings, names: Iterable[str], *, pool_size: int
) -> dict[str, Database]:
    """The databases of read models (or trails) `names`, for one process. On SQLite a file
    each (FARMACY_DATA_DIR/projections/<name>.sqlite); on PostgreSQL they all live in one
    schema (FARMACY_POSTGRES_DSN, FARMACY_POSTGRES_SCHEMA), so they share one pool of
    `pool_size` connections. Close them with `close_databases`."""
    if settings.store == "sqlite":
        return {
            name: SQLiteDatabase(settings.data_dir / "projections" / f"{name}.sqlite")
            for name in names
        }
    if not settings.postgres_dsn:
        raise ValueError("read models need FARMACY_POSTGRES_DSN on this store profile")
    shared = PostgresDatabase(settings.postgres_dsn, settings.postgres_schema, max_size=pool_size)
    return dict.fromkeys(names, shared)


def trail_database(
    settings: Settings, name: str, read_dbs: dict[str, Database]
) -> tuple[Database, bool]:
    """The database holding trail `name`'s checkpoint, for a process that has read models
    open: on PostgreSQL their shared schema and pool, on SQLite the trail's own file. True
    when the caller opened it here and must close it."""
    if settings.store == "sqlite":
        return SQLiteDatabase(settings.data_dir / "projections" / f"{name}.sqlite"), True
    return next(iter(read_dbs.values())), False


def open_database(settings: Settings, name: str, *, pool_size: int = 4) -> Database:
    """The database holding read model `name` (which must exist: UnknownProjection if not)."""
    projection_named(name)
    return open_databases(settings, [name], pool_size=pool_size)[name]


def follower(store: EventStore, db: Database) -> Follow:
    """The trail machinery over `store`, its checkpoints in `db`, as application/ is handed it."""
    return functools.partial(follow, store, db)


def overdue_reservations(db: Database) -> Callable[[datetime], list[Overdue]]:
    """Unpaid reservations past their deadline at a moment, as the reservations model has them."""
    reservations = ReservationQueries(db)

    def overdue(now: datetime) -> list[Overdue]:
        return [
            Overdue(view.order_id, view.fridge_id, datetime.fromisoformat(view.expires_at))
            for view in reservations.due(now).value
        ]

    return overdue


@dataclass
class Root:
    """What one process is built from: its settings, and the parts a test may replace."""

    settings: Settings
    clock: Clock = utc_now
    payments: PaymentProcessor | None = None
    """None: the processor's HTTP API at FARMACY_PAYMENTS_URL (never a silent approve-all)."""
    store: EventStore | None = None
    """An event store already open (a test's), shared instead of opening one per part; the
    root never closes it."""

    def write_side(self, budget: Budget | None = None) -> WriteSide:
        """A write side over the store (opened with `budget`'s pool unless handed in)."""
        pools = budget.event_store_env() if budget else None
        return build_write_side(self.settings, clock=self.clock, extra_env=pools, store=self.store)

    @contextmanager
    def event_store(self, budget: Budget | None = None) -> Iterator[EventStore]:
        """The event store while the block runs (StoreUnavailable if it does not answer)."""
        if self.store is not None:
            yield self.store
            return
        store = open_event_store(self.settings, budget.event_store_env() if budget else None)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def databases(self, names: Iterable[str], *, pool_size: int) -> Iterator[dict[str, Database]]:
        """The databases of read models (or trails) `names`, closed after the block."""
        dbs = open_databases(self.settings, names, pool_size=pool_size)
        try:
            yield dbs
        finally:
            close_databases(dbs)

    def api_write_side(self) -> WriteSide:
        """One API process's write side: its store pool sized for the command lane."""
        return self.write_side(connections.api(self.settings))

    def api_read_models(self) -> dict[str, Database]:
        """Every read model's database for one API process, sharing one pool of
        `connections.API_READ_POOL` connections (on PostgreSQL)."""
        return open_databases(self.settings, PROJECTIONS, pool_size=connections.API_READ_POOL)

    def run(self, process: str, stop: threading.Event, **options: Any) -> list[str]:
        """Run long-running `process` (a name in PROCESSES) until `stop`; the errors that
        ended it. A store that does not answer raises StoreUnavailable."""
        return PROCESSES[process].run(self, stop, **options)

    def worker_process(
        self,
        stop: threading.Event,
        *,
        names: list[str],
        shard: Shard | None = None,
        **options: Any,
    ) -> list[str]:
        """A worker per read model in `names`, threads of this process sharing one store and
        one read-model pool (`connections.worker`); their errors."""
        budget = connections.worker(len(names))
        try:
            with (
                self.event_store(budget) as store,
                self.databases(names, pool_size=budget.reads) as dbs,
            ):
                metrics.watch_read_models(store, dbs)
                return run_workers(store, dbs, names, shard or Shard(), stop, **options)
        except StoreUnavailable as error:  # its message names the setting to fix
            return [str(error)]

    def fulfilment_process(self, stop: threading.Event) -> list[str]:
        """The fulfilment process manager, over a write side of its own."""
        budget = connections.FULFILMENT
        side = self.write_side(budget)
        try:
            # the trail's checkpoint and the reservations model share one pool (on PostgreSQL)
            # and the pickup deadlines too (on SQLite a file of their own: a step writes them
            # while the trail's batch holds its own file's transaction)
            names = ["fulfilment", "reservations", "pickup_deadlines"]
            with self.databases(names, pool_size=budget.reads) as dbs:
                prepare(dbs["reservations"], Reservations())  # readable before its worker runs
                metrics.watch_writer(side.writer)
                metrics.watch_fulfilment(side.store, dbs["fulfilment"])
                payments = self.payments or HttpProcessor(self.settings.payments_url)
                run_fulfilment(
                    Fulfilment(
                        side.ordering,
                        payments,
                        StoredPickupDeadlines(dbs["pickup_deadlines"]),
                        NoShowPolicy(self.settings.no_show),
                    ),
                    follower(side.store, dbs["fulfilment"]),
                    overdue_reservations(dbs["reservations"]),
                    self.clock,
                    stop,
                )
        finally:
            side.close()
        return []

    def expiry_process(self, stop: threading.Event) -> list[str]:
        """The expiry scheduler: each fridge's expired batches off its shelf at its local
        midnight. A second one running is harmless (each batch expires once), so it takes
        no lock."""
        side = self.write_side(connections.EXPIRY)
        metrics.watch_writer(side.writer)
        try:
            run_expiry(Expiry(side.store, side.writer, self.clock), self.clock, stop)
        finally:
            side.close()
        return []

    def poller_process(self, stop: threading.Event) -> list[str]:
        """The fridge cloud's poller: counts from the vendor's API (where
        FARMACY_FRIDGE_CLOUD_URL is set), and stale marks for fridges gone silent."""
        settings = self.settings
        side = self.write_side(connections.POLLER)
        source = (
            VendorCounts(settings.fridge_cloud_url, rate=settings.poll_rate)
            if settings.fridge_cloud_url
            else None
        )
        try:
            poller = Poller(
                side.store,
                side.stock,
                source,
                self.clock,
                timedelta(seconds=settings.stale_after_seconds),
            )
            metrics.watch_writer(side.writer)
            metrics.watch_poller(poller)
            run_poller(poller, stop, settings.poll_every_seconds)
        finally:
            if source is not None:
                source.close()
            side.close()
        return []

    def payments_process(
        self,
        stop: threading.Event,
        *,
        port: int = 8100,
        webhook_url: str = "http://127.0.0.1:8000/payments/webhook",
        delay: float = 0.5,
        late: float = 5.0,
    ) -> list[str]:
        """The simulated payment processor (its ledger in FARMACY_DATA_DIR), until `stop`."""
        settings = self.settings.for_payments()
        ledger = settings.data_dir / "payments-simulator.sqlite"
        secret = settings.payment_webhook_secret
        serve(build_simulator(ledger, webhook_url, secret, delay, late), "127.0.0.1", port, stop)
        return []

    def snapshots_process(self, stop: threading.Event) -> list[str]:
        """The snapshot worker."""
        budget = connections.SNAPSHOTS
        with (
            self.event_store(budget) as store,
            self.databases(["snapshots"], pool_size=budget.reads) as dbs,
        ):
            run_snapshots(store, follower(store, dbs["snapshots"]), stop)
        return []

    def relay_process(
        self, stop: threading.Event, *, replicas: int = 1, duplicate_window: float | None = None
    ) -> list[str]:
        """The feed's relay into NATS JetStream (interfaces/feed/relay.py); idle, saying why,
        without FARMACY_NATS_URL (the feed is then HTTP only)."""
        if not self.settings.nats_url:
            structlog.get_logger(__name__).info(
                "relay idle: FARMACY_NATS_URL is not set, the feed is HTTP only"
            )
            stop.wait()
            return []
        layout = Layout(replicas, duplicate_window or DUPLICATE_WINDOW)
        with self.databases(["feed"], pool_size=RELAY_READS) as dbs:
            db = dbs["feed"]
            prepare(db, Feed())
            feed = FeedQueries(db)

            def read_page(after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
                answer = feed.page(after, limit)
                events = answer.value
                return events, events[-1]["position"] if events else answer.position

            run_relay(
                self.settings.nats_url,
                read_page,
                lambda position: mark_relayed(db, "relay", position),
                stop,
                layout,
            )
        return []


@dataclass(frozen=True)
class Process:
    """A long-running process: what runs it, and the `farmacy` command that starts it."""

    run: Callable[..., list[str]]
    command: tuple[str, ...]


PROCESSES: dict[str, Process] = {
    "worker": Process(Root.worker_process, ("worker",)),
    "fulfilment": Process(Root.fulfilment_process, ("fulfil",)),
    "snapshots": Process(Root.snapshots_process, ("snapshots",)),
    "expiry": Process(Root.expiry_process, ("expiry",)),
    "poller": Process(Root.poller_process, ("fridges", "poll")),
    "payments": Process(Root.payments_process, ("payments", "simulate")),
    "relay": Process(Root.relay_process, ("relay",)),
}
"""Every long-running process but the API (uvicorn runs that; its factory asks the root for
its parts), by name. Each command calls `Root.run` with its name; `farmacy run` supervises
one of each (a worker per read model) as processes of their own (ops/supervisor.py)."""


def run(process: str, settings: Settings, stop: threading.Event, **options: Any) -> list[str]:
    """Run long-running `process` with every part real, until `stop`; its errors."""
    return Root(settings).run(process, stop, **options)
