"""Prometheus metrics of every long-running process but the API, each on a port of its own.

The API serves /metrics on its own port (interfaces/http/operations.py). `farmacy worker`,
`fulfil`, `relay`, `expiry`, `fridges poll`, `snapshots` and `payments simulate` serve
prometheus_client's registry on `--metrics-port` (FARMACY_METRICS_PORT; 0 or unset: none)
from a thread of their own (`serve`). What a process shows:

- counted where it happens: batch sizes, retries and dead letters of read models and trails
  (projections/runner.py), payment calls by operation and outcome
  (interfaces/payments/http_processor.py), the relay's events published and re-reads
  (interfaces/feed/relay.py);
- read at scrape time from what the process runs, once the composition root says what
  (`watch_*`): the lag of the read models a worker keeps (the API's collector, `LAG`),
  fulfilment's lag (`FULFILMENT_LAG`), the fridge writer's conflicts (`CONFLICTS`) and the
  poller's stale fridges. The collectors are the API's own, so one name means one thing on
  every port.

Watching does nothing in a process that serves no metrics port: tests run several processes'
parts in one Python process, where the API's collectors must keep reading the API's sources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import structlog
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from application.fridge_cloud import Poller
from application.fridge_writer import FridgeWriter
from application.store import EventStore
from projections.database import Database

log = structlog.get_logger(__name__)

METRICS_PORT = "FARMACY_METRICS_PORT"
METRICS_HOST = "FARMACY_METRICS_HOST"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - a deployment's Prometheus scrapes from elsewhere
_serving = False  # whether this process serves a metrics port (set once, by `serve`)


def serve(port: int, host: str | None = None) -> int:
    """Serve this process's metrics on `port` (0: any free port) of `host` (default
    FARMACY_METRICS_HOST, else every interface) from a daemon thread; the port bound.
    OSError if it cannot be bound."""
    global _serving
    host = host or os.environ.get(METRICS_HOST) or EVERY_INTERFACE
    register_collectors()
    server, _ = start_http_server(port, addr=host)  # a daemon thread: it ends with the process
    _serving = True
    bound = int(server.server_port)
    log.info("metrics_serving", host=host, port=bound)
    return bound


def register_collectors() -> None:
    """Register the API's scrape-time collectors this module points at sources, by importing
    them (here, not at the top: the API's modules import the composition root, which imports
    this one). The feed's RelayLag reads the read models' source: the feed's worker shows the
    relays' lag too. Every process serving metrics shows every family, empty if not its own."""
    import interfaces.http.feed
    import interfaces.http.fulfilment_metrics  # noqa: F401


def serving() -> bool:
    return _serving


def watch_read_models(store: EventStore, dbs: Mapping[str, Database]) -> None:
    """Show the position and lag of every shard of the read models in `dbs` (a worker's)."""
    if serving():
        from interfaces.http.operations import LAG
        from interfaces.http.reading import ReadSide

        LAG.source = (store, ReadSide(dict(dbs)))


def watch_fulfilment(store: EventStore, db: Database) -> None:
    """Show fulfilment's position and lag, its checkpoint read from `db` (the caller's)."""
    if serving():
        from interfaces.http.fulfilment_metrics import watch_fulfilment as watch_trail

        watch_trail(store, db, owned=False)


def watch_writer(writer: FridgeWriter) -> None:
    """Show the fridge writer's version conflicts (fulfilment, expiry, the poller)."""
    if serving():
        from interfaces.http.operations import CONFLICTS

        CONFLICTS.writer = writer


class StaleFridges(Collector):
    """How many fridges the poller knows to be marked stale, read at scrape time."""

    poller: Poller | None = None

    def collect(self) -> Any:
        stale = GaugeMetricFamily(
            "farmacy_fridges_stale", "Fridges marked stale: no count report for too long"
        )
        if self.poller is not None:
            stale.add_metric([], len(self.poller.stale_fridges()))
        yield stale


STALE = StaleFridges()
REGISTRY.register(STALE)


def watch_poller(poller: Poller) -> None:
    if serving():
        STALE.poller = poller
