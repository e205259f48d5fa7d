"""For whoever runs Farmacy: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import os
from typing import Any

from litestar import Controller, Response, get
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from application.errors import StoreUnavailable
from application.fridge_writer import FridgeWriter
from application.store import EventStore
from interfaces.http import schemas
from interfaces.http.errors import problem
from interfaces.http.reading import ReadSide
from interfaces.http.schemas import Read, Side
from projections.status import ShardStatus, shard_statuses

RUN_ID_VARIABLE = "FARMACY_RUN_ID"
RUN_ID_HEADER = "X-Farmacy-Run"
RUN_ID = os.environ.get(RUN_ID_VARIABLE, "")
"""Set by `farmacy run` for the API it starts: /healthz echoes it, so the main job knows
that the server answering on its port is its own."""

READY_LAG_SECONDS = 10.0
"""A read model whose oldest unapplied event is older than this makes the process unready."""


ORDERS_PLACED = Counter("farmacy_orders_placed", "Orders placed (new, not repeats)")
ORDERS_SOLD_OUT = Counter("farmacy_orders_sold_out", "Orders refused because a fridge sold out")


class WriterConflicts(Collector):
    """Version conflicts the per-fridge writer retried, and the decisions queued for their
    fridge's turn, read at scrape time."""

    writer: FridgeWriter | None = None

    def collect(self) -> Any:
        total = CounterMetricFamily(
            "farmacy_fridge_write_conflicts", "Fridge appends retried after a version conflict"
        )
        total.add_metric([], self.writer.stats.conflicts if self.writer else 0)
        yield total
        waiting = GaugeMetricFamily(
            "farmacy_fridge_decisions_waiting", "Decisions queued for their fridge's turn"
        )
        waiting.add_metric([], self.writer.waiting() if self.writer else 0)
        yield waiting


CONFLICTS = WriterConflicts()
REGISTRY.register(CONFLICTS)


def statuses(store: EventStore, read: ReadSide) -> list[ShardStatus]:
    """Every shard of every read model this process serves: position, lag, state."""
    return [status for name, db in read.dbs.items() for status in shard_statuses(store, db, name)]


def unready(found: list[ShardStatus]) -> list[str]:
    """Why the read side cannot serve fresh answers: a shard not running, or too far behind."""
    reasons = []
    for s in found:
        where = f"{s.projection} shard {s.shard}"
        if s.state != "running":
            reasons.append(f"{where}: worker {s.state}" + (f" ({s.error})" if s.error else ""))
        elif s.lag_seconds > READY_LAG_SECONDS:
            reasons.append(f"{where}: {s.lag_events} events, {s.lag_seconds:.1f} s behind")
    return reasons


class ProjectionLag(Collector):
    """Each read model's position and lag (events and seconds), read at scrape time."""

    source: tuple[EventStore, ReadSide] | None = None

    def collect(self) -> Any:
        position = GaugeMetricFamily(
            "farmacy_projection_position", "Position a read model shard reflects", labels=LABELS
        )
        events = GaugeMetricFamily(
            "farmacy_projection_lag_events", "Events a shard has still to apply", labels=LABELS
        )
        seconds = GaugeMetricFamily(
            "farmacy_projection_lag_seconds",
            "Age of the oldest event a shard has not applied (0 when caught up)",
            labels=LABELS,
        )
        found: list[ShardStatus] = []
        if self.source is not None:
            try:
                found = statuses(*self.source)
            except Exception:  # a scrape must not fail because a database is down
                found = []
        for s in found:
            labels = [s.projection, s.shard]
            position.add_metric(labels, s.position)
            events.add_metric(labels, s.lag_events)
            seconds.add_metric(labels, s.lag_seconds)
        yield from (position, events, seconds)


LABELS = ["projection", "shard"]
LAG = ProjectionLag()
REGISTRY.register(LAG)


class MetricsRoutes(PrometheusController):
    path = "/metrics"
    include_in_schema = False


class HealthRoutes(Controller):
    tags = ["operations"]

    @get("/healthz")
    async def alive(self) -> Response[schemas.Health]:
        """The process answers."""
        return Response(schemas.Health("ok"), headers={RUN_ID_HEADER: RUN_ID} if RUN_ID else None)

    @get("/readyz", sync_to_thread=True)
    def ready(self, side: Side, read: Read) -> Response[schemas.Readiness]:
        """The event store answers and every read model has a running worker that is at most
        READY_LAG_SECONDS behind (503 with Retry-After and the reasons otherwise)."""
        try:
            position = side.store.position()
        except Exception as error:  # whatever the driver raised, the answer is "not ready"
            raise StoreUnavailable(f"the event store does not answer: {error}") from error
        reasons = unready(statuses(side.store, read))
        if reasons:
            raise problem(503, "not ready", "; ".join(reasons), retry_after=1, reasons=reasons)
        return Response(schemas.Readiness("ready", position))
