"""The fulfilment worker: runs the process manager over the event store, at least once.

Fulfilment's own progress is a checkpoint like any read model's (a projection with no tables,
`fulfilment`), advanced in a transaction after the batch's steps have been carried out: a crash
repeats steps, and every step is idempotent on the order id. Like a projection worker, one
worker is active at a time (advisory lock / file lock); others stand by. Each tick it also
expires unpaid reservations past their deadline, read from the reservations model.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any, ClassVar

import structlog

from application.clock import Clock, utc_now
from application.fulfilment import Fulfilment, Overdue
from application.payments import PaymentProcessor
from ops.bootstrap import build_write_side
from ops.settings import Settings
from projections.database import Database, PostgresDatabase, SQLiteDatabase, Tx
from projections.models import open_database
from projections.projection import Projection, Shard
from projections.reservations import ReservationQueries, Reservations
from projections.runner import Runner, prepare
from projections.worker import POLL_INTERVAL, STANDBY_RETRY, shard_lock

log = structlog.get_logger(__name__)

NAME = "fulfilment"
BATCH_SIZE = 100
EXPIRY_TICK_SECONDS = 1.0


class FulfilmentTrail(Projection):
    """How far fulfilment has got: a checkpoint and no tables. Applying = carrying out."""

    name = NAME
    tables: ClassVar[dict[str, str]] = {}
    policy = "stop"  # a step that keeps failing stops the worker, naming event and position

    def __init__(
        self, fulfilment: Fulfilment, generation: int = 1, shard: Shard | None = None
    ) -> None:
        super().__init__(generation, shard)
        self.fulfilment = fulfilment

    def apply(self, event: Any, tx: Tx, position: int) -> None:
        structlog.contextvars.bind_contextvars(position=position)
        try:
            self.fulfilment.handle(event)
        finally:
            structlog.contextvars.unbind_contextvars("position")


def open_trail_database(settings: Settings) -> Database:
    """Where fulfilment keeps its checkpoint: beside the read models."""
    if settings.store == "sqlite":
        return SQLiteDatabase(settings.data_dir / "projections" / f"{NAME}.sqlite")
    assert settings.postgres_dsn, "fulfilment needs FARMACY_POSTGRES_DSN on this store profile"
    return PostgresDatabase(settings.postgres_dsn, settings.postgres_schema, max_size=2)


def overdue(reservations: ReservationQueries, now: datetime) -> list[Overdue]:
    return [
        Overdue(view.order_id, view.fridge_id, datetime.fromisoformat(view.expires_at))
        for view in reservations.due(now).value
    ]


def run_fulfilment(
    settings: Settings,
    payments: PaymentProcessor,
    stop: threading.Event,
    *,
    clock: Clock = utc_now,
) -> None:
    """Stand by until active, then fulfil orders until `stop` is set."""
    side = build_write_side(settings, clock=clock)
    trail = open_trail_database(settings)
    reservations_db = open_database(settings, "reservations", pool_size=2)
    fulfilment = Fulfilment(side.ordering, payments)
    lock = shard_lock(trail, NAME, Shard())
    try:
        while not stop.is_set() and not lock.try_acquire():
            stop.wait(STANDBY_RETRY)
        if stop.is_set():
            return
        log.info("fulfilment_active")
        runner = Runner(
            side.store,
            trail,
            lambda generation, shard: FulfilmentTrail(fulfilment, generation, shard),
            batch_size=BATCH_SIZE,
        )
        prepare(reservations_db, Reservations())  # readable before its own worker first runs
        reservations = ReservationQueries(reservations_db)
        next_tick = 0.0
        while not stop.is_set():
            read = runner.step()
            if time.monotonic() >= next_tick:
                expired = fulfilment.expire_overdue(overdue(reservations, clock()))
                if expired:
                    log.info("orders_expired", count=expired)
                next_tick = time.monotonic() + EXPIRY_TICK_SECONDS
            if read < BATCH_SIZE:
                stop.wait(POLL_INTERVAL)
    finally:
        lock.release()
        reservations_db.close()
        trail.close()
        side.close()
