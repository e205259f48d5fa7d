"""The fulfilment process manager's position and lag on /metrics, read at scrape time.

Its checkpoint is a trail's (projections/trails.py): on PostgreSQL it lives in the read
models' schema, so the API reads it through a read model's pool (no connection of its own);
on SQLite in FARMACY_DATA_DIR/projections/fulfilment.sqlite (ops/root.py `trail_database`).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from application.store import EventStore
from projections.database import Database
from projections.status import shard_statuses

TRAIL = "fulfilment"


class FulfilmentLag(Collector):
    source: tuple[EventStore, Database] | None = None
    owned = False

    def collect(self) -> Any:
        position = GaugeMetricFamily(
            "farmacy_fulfilment_position", "Position the fulfilment process has acted up to"
        )
        events = GaugeMetricFamily(
            "farmacy_fulfilment_lag_events", "Events fulfilment has still to act on"
        )
        seconds = GaugeMetricFamily(
            "farmacy_fulfilment_lag_seconds",
            "Age of the oldest event fulfilment has not acted on (0 when caught up)",
        )
        found = []
        if self.source is not None:
            try:
                found = shard_statuses(self.source[0], self.source[1], TRAIL)
            except Exception:  # a scrape must not fail because a database is down
                found = []
        for s in found[:1]:  # one shard: one process manager is active at a time
            position.add_metric([], s.position)
            events.add_metric([], s.lag_events)
            seconds.add_metric([], s.lag_seconds)
        yield from (position, events, seconds)


FULFILMENT_LAG = FulfilmentLag()
REGISTRY.register(FULFILMENT_LAG)


def watch_fulfilment(store: EventStore, db: Database, owned: bool) -> None:
    """Show fulfilment's lag on /metrics from now on, read from `db` (closed by
    `unwatch_fulfilment` if `owned`)."""
    FULFILMENT_LAG.source = (store, db)
    FULFILMENT_LAG.owned = owned


def unwatch_fulfilment() -> None:
    source, FULFILMENT_LAG.source = FULFILMENT_LAG.source, None
    if source is not None and FULFILMENT_LAG.owned:
        source[1].close()
