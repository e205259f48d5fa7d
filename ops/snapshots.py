"""The snapshot worker: snapshots long-lived fridges, outside every customer-facing process.

It follows the event store (a trail, ops/trails.py) and, each time a fridge's stream reaches
a multiple of the snapshot interval, records a snapshot of that version, rebuilt from the
store. Serialising a big fridge holds the interpreter for tens of milliseconds; done in the
API, every caller queued on that fridge waited for it. Repeating a snapshot after a crash is
harmless (the store keeps the first).
"""

from __future__ import annotations

import threading

import structlog

from application.store import EventStore
from domain.fridge import Fridge
from ops import connections
from ops.bootstrap import open_event_store
from ops.settings import Settings
from ops.trails import Trail, follow
from projections.database import Tx
from projections.projection import Shard

log = structlog.get_logger(__name__)


class SnapshotTrail(Trail):
    """How far snapshotting has got. Applying an event = snapshotting its fridge if due."""

    name = "snapshots"

    def __init__(self, store: EventStore, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.store = store

    def apply(self, event: object, tx: Tx, position: int) -> None:
        if not isinstance(event, Fridge.Event):
            return
        version = event.originator_version
        if version > 0 and version % self.store.SNAPSHOT_EVERY == 0:
            taken = self.store.snapshot(event.originator_id, version)
            log.info("snapshot", stream=str(event.originator_id), version=version, taken=taken)


def run_snapshots(settings: Settings, stop: threading.Event) -> None:
    """Stand by until active, then snapshot fridges until `stop` is set."""
    store = open_event_store(settings, connections.SNAPSHOTS.event_store_env())
    try:
        follow(
            settings,
            store,
            lambda generation, shard: SnapshotTrail(store, generation, shard),
            stop,
            batch_size=500,
        )
    finally:
        store.close()
