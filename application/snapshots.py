"""The snapshot process: snapshots long-lived fridges, outside every customer-facing process.

It follows the event store (a trail, handed to it as `follow`) and, each time a fridge's
stream reaches a multiple of the snapshot interval, records a snapshot of that version,
rebuilt from the store (`EventStore.snapshot`). Serialising a big fridge holds the
interpreter for tens of milliseconds; done in the API, every caller queued on that fridge
waited for it. Repeating a snapshot after a crash is harmless (the store keeps the first).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from application.errors import TooBusy
from application.follow import Follow, Seen
from application.store import EventStore
from domain.fridge import Fridge

log = structlog.get_logger(__name__)

BATCH_SIZE = 500


def snapshot_if_due(store: EventStore, event: object) -> None:
    """Snapshot the event's fridge if its stream has just reached a multiple of the interval."""
    if not isinstance(event, Fridge.Event):
        return
    version = event.originator_version
    if version > 0 and version % store.SNAPSHOT_EVERY == 0:
        taken = store.snapshot(event.originator_id, version)
        log.info("snapshot", stream=str(event.originator_id), version=version, taken=taken)


def run_snapshots(store: EventStore, follow: Follow, stop: threading.Event) -> None:
    """Stand by until active, then snapshot fridges until `stop` is set."""

    def act(batch: Sequence[Seen]) -> None:
        for event, _ in batch:
            snapshot_if_due(store, event)

    follow(
        "snapshots",
        act,
        stop,
        transient=(TooBusy,),  # as every trail had it; a snapshot raises no TooBusy today
        batch_size=BATCH_SIZE,
    )
