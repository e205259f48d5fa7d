"""The fulfilment process: runs the process manager (application/fulfilment.py) over the store.

Fulfilment's progress is a trail: a checkpoint advanced after the batch's steps have been
carried out (`Fulfilment.handle_all`, which asks the processor about a batch's orders at
once), so a crash repeats steps, and every step is idempotent on the order id. Each
second the active process also expires unpaid reservations past their deadline, as the
reservations read model lists them (`overdue`), and closes the pickup windows that ended
(the deadlines fulfilment keeps itself, `Fulfilment.deadlines`). The composition root
(ops/root.py) hands it the trail machinery (`follow`) and that list; it imports neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import structlog

from application.causes import caused_by
from application.clock import Clock
from application.errors import TooBusy
from application.follow import Follow
from application.fulfilment import Fulfilment, Overdue
from application.payments import PaymentUnavailable
from domain.causes import Cause

log = structlog.get_logger(__name__)

EXPIRY_TICK_SECONDS = 1.0

COMMANDS_RETRIED = (TooBusy, PaymentUnavailable)
"""A command that lost to conflicts for its whole budget, or a processor that did not answer,
is tried again later (with the same idempotency key)."""


PAYMENT_DEADLINE = Cause(causation_id="payment deadline", process="fulfilment")
PICKUP_WINDOW = Cause(causation_id="pickup window", process="fulfilment")
"""The causes of what the clock, not an event, makes fulfilment record."""


def run_fulfilment(
    fulfilment: Fulfilment,
    follow: Follow,
    overdue: Callable[[datetime], list[Overdue]],
    clock: Clock,
    stop: threading.Event,
) -> None:
    """Stand by until active, then fulfil orders until `stop` is set."""

    def expire() -> None:
        now = clock()
        with caused_by(PAYMENT_DEADLINE):
            expired = fulfilment.expire_overdue(overdue(now))
        if expired:
            log.info("orders_expired", count=expired)
        with caused_by(PICKUP_WINDOW):
            uncollected = fulfilment.close_pickup_windows(now)
        if uncollected:
            log.info("orders_not_collected", count=uncollected)

    follow(
        "fulfilment",
        fulfilment.handle_all,
        stop,
        transient=COMMANDS_RETRIED,
        tick=(EXPIRY_TICK_SECONDS, expire),
    )
