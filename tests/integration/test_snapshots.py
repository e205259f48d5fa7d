"""The snapshot worker: a long-lived fridge loads from a snapshot equal to its full history."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from application.store import EventStore
from domain.fridge import Fridge
from ops.root import Root, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import make_world


def test_a_long_lived_fridge_loads_from_a_snapshot_equal_to_its_full_history(
    store_settings: Settings, clock: FakeClock
) -> None:
    side = build_write_side(store_settings, clock=clock)
    stop = threading.Event()
    worker = threading.Thread(target=Root(store_settings).run, args=("snapshots", stop))
    worker.start()
    try:
        world = make_world(side, soup_units=1)
        best_before = (clock.now + timedelta(days=2)).date()
        for n in range(EventStore.SNAPSHOT_EVERY):
            side.stock.deliver(world.fridge_id, f"d-{n}", {world.soup: 1}, best_before)
        stream = Fridge.create_id(world.fridge_id)
        assert side.store.snapshots is not None
        deadline = time.monotonic() + 30
        while not (taken := list(side.store.snapshots.get(stream))):
            assert time.monotonic() < deadline, "the snapshot worker took no snapshot"
            time.sleep(0.02)
        assert [s.originator_version for s in taken] == [EventStore.SNAPSHOT_EVERY]
    finally:
        stop.set()
        worker.join(timeout=30)
        side.close()

    fresh = build_write_side(store_settings, clock=clock)
    try:
        from_snapshot = fresh.catalogue.fridge(world.fridge_id)
        replayed: Fridge | None = None
        for event in fresh.store.events.get(stream):
            replayed = event.mutate(replayed)  # type: ignore[attr-defined]
        assert replayed is not None
        assert from_snapshot.on_hand(world.soup) == EventStore.SNAPSHOT_EVERY + 1
        assert vars(from_snapshot) == vars(replayed)
        # A worker that repeats itself after a crash finds the snapshot there already.
        assert not fresh.store.snapshot(stream, EventStore.SNAPSHOT_EVERY)
    finally:
        fresh.close()
