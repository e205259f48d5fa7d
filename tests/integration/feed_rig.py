"""What the feed's JetStream tests share: a store with orders flowing, the feed's worker, and
ways to read what the feed, the stream and the compacted bucket hold."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import nats

from interfaces.feed.jetstream import RESERVATIONS, STREAM
from ops.root import Root, WriteSide, open_database
from ops.settings import Settings
from projections.feed import Feed, FeedQueries
from projections.freshness import read_state
from projections.runner import prepare
from tests.integration.world import World, place_and_open

FINAL_STATUS = {0: "cancelled", 1: "expired", 2: "picked_up", 3: "placed"}
"""What the workload does to its n-th order (n % 4), and the status the order ends in."""


@contextmanager
def feed_worker(settings: Settings, side: WriteSide) -> Iterator[None]:
    """The feed's read-model worker in a thread, as `farmacy worker --projection feed`."""
    stop = threading.Event()
    errors: list[str] = []
    root = Root(settings, store=side.store)
    thread = threading.Thread(
        target=lambda: errors.extend(root.run("worker", stop, names=["feed"], batch_size=100)),
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors


@contextmanager
def relay_thread(settings: Settings, side: WriteSide, **options: Any) -> Iterator[None]:
    stop = threading.Event()
    errors: list[str] = []
    root = Root(settings, store=side.store)
    thread = threading.Thread(
        target=lambda: errors.extend(root.run("relay", stop, **options)), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors


@dataclass
class Workload:
    """Orders placed at the world's fridge, each then cancelled, expired, picked up or left
    placed (FINAL_STATUS), from a thread of its own."""

    side: WriteSide
    world: World
    orders: int
    pause: float = 0.0
    halfway: threading.Event | None = None  # set: half the orders wait for it (a kill, say)
    placed: dict[str, str] = field(default_factory=dict)  # order id -> its final status
    errors: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            due: list[str] = []
            for n in range(self.orders):
                if self.halfway is not None and n == self.orders // 2:
                    # The rest come after what the test does at halfway, however slow the
                    # machine: events are certain to flow on after it.
                    assert self.halfway.wait(timeout=60), "halfway was never reached"
                meal = self.world.soup if n % 2 else self.world.salad
                order_id = place_and_open(
                    self.side, f"c{n}", f"k{n}", self.world.fridge_id, {meal: 1}
                ).order_id
                status = FINAL_STATUS[n % 4]
                if status == "cancelled":
                    self.side.ordering.cancel(order_id)
                elif status == "picked_up":
                    self.side.ordering.authorise_payment(order_id, f"psp-{n}")
                    self.side.ordering.pick_up(self.world.fridge_id, order_id)
                elif status == "expired":
                    due.append(order_id)
                self.placed[order_id] = status
                if self.pause:
                    time.sleep(self.pause)  # a steady trickle of orders, not a race cover
            self.side.clock.advance(hours=2)  # type: ignore[attr-defined]
            for order_id in due:
                self.side.ordering.expire(order_id)
        except BaseException as error:
            self.errors.append(error)
            raise

    @contextmanager
    def running(self) -> Iterator[Workload]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            thread.join(timeout=120)
        assert not self.errors, self.errors


def feed_events(settings: Settings) -> list[dict[str, Any]]:
    """Every integration event the feed holds, in position order."""
    db = open_database(settings, "feed", pool_size=1)
    try:
        prepare(db, Feed())  # readable (empty) before its worker has made its tables
        queries, found, after = FeedQueries(db), [], 0
        while page := queries.page(after, 1000).value:
            found += page
            after = page[-1]["position"]
        return found
    finally:
        db.close()


def feed_reached_head(settings: Settings, side: WriteSide) -> bool:
    """The feed's read model has applied every event the store holds now."""
    db = open_database(settings, "feed", pool_size=1)
    try:
        prepare(db, Feed())
        with db.snapshot() as tx:
            return read_state(tx, Feed.name).position >= (side.store.position() or 0)
    finally:
        db.close()


def wait_for(
    what: str, check: Callable[[], bool], timeout: float = 60.0, every: float = 0.1
) -> None:
    """Poll `check` until it holds (a condition, with a deadline that fails the test)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s"
        time.sleep(every)


async def _stream(url: str) -> list[tuple[str, dict[str, Any]]]:
    nc = await nats.connect(url.split(","))
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for seq in range(1, (info.state.last_seq or 0) + 1):
            msg = await js.get_msg(STREAM, seq=seq)
            found.append((msg.subject or "", json.loads(msg.data or b"")))
        return found
    finally:
        await nc.close()


def stream_messages(url: str, timeout: float = 60.0) -> list[tuple[str, dict[str, Any]]]:
    """Every message of the feed's stream, in stream order: (subject, event); asked again
    while a cluster elects a leader (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return asyncio.run(_stream(url))
        except (TimeoutError, nats.errors.Error):
            if time.monotonic() > deadline:
                raise


async def _reservations(url: str) -> tuple[int, dict[str, dict[str, Any]]]:
    nc = await nats.connect(url.split(","))
    try:
        js = nc.jetstream()
        # The keys from the bucket's stream itself (one subject per key), not kv.keys(): that
        # one watches for the initial values and, on a slow machine, may stop before any came.
        info = await js.stream_info(f"KV_{RESERVATIONS}", subjects_filter=">")
        prefix = f"$KV.{RESERVATIONS}."
        kv = await js.key_value(RESERVATIONS)
        values = {}
        for subject in info.state.subjects or {}:
            key = subject.removeprefix(prefix)
            entry = await kv.get(key)
            values[key] = json.loads(entry.value or b"")
        return int(info.state.messages), values
    finally:
        await nc.close()


def reservations(url: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """How many messages the compacted bucket's stream holds, and each key's value."""
    return asyncio.run(_reservations(url))
