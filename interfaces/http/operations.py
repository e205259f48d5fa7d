"""For whoever runs Farmacy: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.plugins.prometheus import PrometheusController
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from application.errors import StoreUnavailable
from application.fridge_writer import FridgeWriter
from interfaces.http import schemas
from interfaces.http.schemas import Side

ORDERS_PLACED = Counter("farmacy_orders_placed", "Orders placed (new, not repeats)")
ORDERS_SOLD_OUT = Counter("farmacy_orders_sold_out", "Orders refused because a fridge sold out")


class WriterConflicts(Collector):
    """Version conflicts the per-fridge writer retried, read at scrape time."""

    writer: FridgeWriter | None = None

    def collect(self) -> Any:
        total = CounterMetricFamily(
            "farmacy_fridge_write_conflicts", "Fridge appends retried after a version conflict"
        )
        total.add_metric([], self.writer.stats.conflicts if self.writer else 0)
        yield total


CONFLICTS = WriterConflicts()
REGISTRY.register(CONFLICTS)


class Metrics(PrometheusController):
    path = "/metrics"
    include_in_schema = False


class Health(Controller):
    tags = ["operations"]

    @get("/healthz")
    async def alive(self) -> schemas.Health:
        """The process answers."""
        return schemas.Health("ok")

    @get("/readyz", sync_to_thread=True)
    def ready(self, side: Side) -> Response[schemas.Health]:
        """The event store answers (503 with Retry-After otherwise)."""
        try:
            position = side.store.position()
        except Exception as error:  # whatever the driver raised, the answer is "not ready"
            raise StoreUnavailable(f"the event store does not answer: {error}") from error
        return Response(schemas.Health("ready", position))
