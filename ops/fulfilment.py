"""The fulfilment worker: runs the process manager over the event store, at least once.

Fulfilment's progress is a trail (ops/trails.py): a checkpoint advanced after the batch's
steps have been carried out, so a crash repeats steps, and every step is idempotent on the
order id. Each second the active worker also expires unpaid reservations past their
deadline, read from the reservations model.
"""

from __future__ import annotations

import threading
from datetime import datetime

import structlog

from application.clock import Clock, utc_now
from application.fulfilment import Fulfilment, Overdue
from application.payments import PaymentProcessor
from ops import connections
from ops.bootstrap import build_write_side
from ops.read_models import open_databases
from ops.settings import Settings
from ops.trails import Trail, follow
from projections.database import Tx
from projections.models import close_databases
from projections.projection import Shard
from projections.reservations import ReservationQueries, Reservations
from projections.runner import prepare

log = structlog.get_logger(__name__)

EXPIRY_TICK_SECONDS = 1.0


class FulfilmentTrail(Trail):
    """How far fulfilment has got. Applying an event = carrying out the steps it calls for."""

    name = "fulfilment"

    def __init__(
        self, fulfilment: Fulfilment, generation: int = 1, shard: Shard | None = None
    ) -> None:
        super().__init__(generation, shard)
        self.fulfilment = fulfilment

    def apply(self, event: object, tx: Tx, position: int) -> None:
        with structlog.contextvars.bound_contextvars(position=position):
            self.fulfilment.handle(event)


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
    budget = connections.FULFILMENT
    side = build_write_side(settings, clock=clock, extra_env=budget.event_store_env())
    # the trail's checkpoint and the reservations model share one pool (on PostgreSQL)
    dbs = open_databases(settings, ["fulfilment", "reservations"], pool_size=budget.reads)
    reservations_db = dbs["reservations"]
    fulfilment = Fulfilment(side.ordering, payments)
    try:
        prepare(reservations_db, Reservations())  # readable before its own worker first runs
        reservations = ReservationQueries(reservations_db)

        def expire() -> None:
            expired = fulfilment.expire_overdue(overdue(reservations, clock()))
            if expired:
                log.info("orders_expired", count=expired)

        follow(
            settings,
            side.store,
            lambda generation, shard: FulfilmentTrail(fulfilment, generation, shard),
            stop,
            tick=(EXPIRY_TICK_SECONDS, expire),
            db=dbs["fulfilment"],
        )
    finally:
        close_databases(dbs)
        side.close()
