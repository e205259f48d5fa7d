"""The feed on a real NATS JetStream server of the suite's own: every integration event once,
in commit order per partition, through relay crashes; the compacted bucket; consumers pinned
to partitions with a standby that takes over."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interfaces.feed.consumer import Partition
from interfaces.feed.jetstream import reservation_key
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from projections.integration import PARTITIONS
from tests.conftest import FakeClock
from tests.integration.feed_rig import (
    Workload,
    feed_events,
    feed_reached_head,
    feed_worker,
    relay_thread,
    reservations,
    stream_messages,
    wait_for,
)
from tests.integration.nats_servers import NatsServer, single_server
from tests.integration.world import World, make_world


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with single_server(tmp_path) as running:
        yield running


@pytest.fixture
def settings(tmp_path: Path, server: NatsServer) -> Settings:
    return Settings(store="sqlite", data_dir=tmp_path / "data", nats_url=server.url)


@pytest.fixture
def side(settings: Settings) -> Iterator[WriteSide]:
    side = build_write_side(settings, clock=FakeClock())
    yield side
    side.close()


@pytest.fixture
def world(side: WriteSide) -> World:
    return make_world(side, soup_units=200, salad_units=200)


def farmacy(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FARMACY_STORE": "sqlite",
        "FARMACY_DATA_DIR": str(settings.data_dir),
        "FARMACY_NATS_URL": settings.nats_url or "",
        "FARMACY_LOG_FORMAT": "json",
    }
    log = (settings.data_dir / f"{args[0]}-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", *args], env=env, stdout=log, stderr=log
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def caught_up(settings: Settings, side: WriteSide) -> bool:
    """The feed holds every event of the store, and the stream as many as the feed (equality
    is asserted afterwards)."""
    assert settings.nats_url
    if not feed_reached_head(settings, side):
        return False
    return len(stream_messages(settings.nats_url)) >= len(feed_events(settings)) > 0


def assert_stream_is_the_feed(settings: Settings) -> None:
    """The stream holds every feed event exactly once, in commit order, each on the subject
    of its city and partition; so each partition is in commit order too."""
    assert settings.nats_url
    feed = feed_events(settings)
    stream = stream_messages(settings.nats_url)
    assert [event["id"] for _, event in stream] == [event["id"] for event in feed]
    assert [event["position"] for _, event in stream] == sorted(e["position"] for e in feed)
    for subject, event in stream:
        assert subject == f"farmacy.feed.{event['city_id']}.{event['partition']}"


def test_the_stream_holds_every_event_once_and_the_bucket_one_status_per_reservation(
    settings: Settings, side: WriteSide, world: World
) -> None:
    workload = Workload(side, world, orders=24)
    with feed_worker(settings, side), relay_thread(settings, side):
        with workload.running():
            pass
        wait_for("the relay has published the feed", lambda: caught_up(settings, side))
        assert settings.nats_url
        wait_for(
            "every order's final status is in the bucket",
            lambda: (
                reservations(settings.nats_url or "")[1].keys()
                >= {reservation_key(o) for o in workload.placed}
            ),
        )
    assert_stream_is_the_feed(settings)
    messages, values = reservations(settings.nats_url)
    assert messages == len(workload.placed) == len(values)
    assert {key: value["status"] for key, value in values.items()} == {
        reservation_key(order_id): status for order_id, status in workload.placed.items()
    }
    assert {"cancelled", "expired", "picked_up", "placed"} == set(workload.placed.values())


@pytest.mark.slow
def test_a_relay_killed_at_random_points_publishes_nothing_twice_and_loses_nothing(
    settings: Settings, side: WriteSide, world: World
) -> None:
    """SIGKILL while events flow, four times, once followed by a pause longer than the
    stream's duplicate window (1 s here): the relay resumes from what the stream holds."""
    chance = random.Random(21)
    workload = Workload(side, world, orders=48, pause=0.03)
    with feed_worker(settings, side), workload.running():
        for attempt in range(4):
            relay = farmacy(settings, "relay", "--duplicate-window", "1")
            if attempt == 0:  # let the first one create the stream, then kill it mid-flow
                wait_for(
                    "the relay made its stream",
                    lambda: bool(stream_messages(settings.nats_url or "")),
                    timeout=30,
                )
            time.sleep(chance.uniform(0.2, 1.0))  # a random moment to kill it at
            kill(relay)
            if attempt == 2:
                time.sleep(1.5)  # longer than the duplicate window: message ids forgotten
    with feed_worker(settings, side):
        relay = farmacy(settings, "relay", "--duplicate-window", "1")
        try:
            wait_for("the restarted relay has caught up", lambda: caught_up(settings, side))
        finally:
            relay.terminate()
            relay.wait(timeout=30)
    assert_stream_is_the_feed(settings)


def out_events(path: Path) -> list[dict[str, object]]:
    """The events a consumer's sink holds: whole lines only (a consumer may be mid-line)."""
    if not path.exists():
        return []
    whole = path.read_text().rpartition("\n")[0]
    return [json.loads(line) for line in whole.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_standby_consumer_takes_over_a_killed_one_without_loss_or_reordering(
    settings: Settings, side: WriteSide, world: World, tmp_path: Path
) -> None:
    partition = Partition.parse("0/1")
    out = tmp_path / "partition.jsonl"
    args = ("feed", "consume", "--partition", "0/1", "--out", str(out), "--lease-seconds", "1")
    workload = Workload(side, world, orders=32, pause=0.03)
    with feed_worker(settings, side), relay_thread(settings, side):
        first = farmacy(settings, *args)
        wait_for("the first consumer writes", lambda: bool(out_events(out)), timeout=60)
        second = farmacy(settings, *args)
        try:
            with workload.running():
                wait_for("orders flow through the first", lambda: len(out_events(out)) > 12)
                kill(first)  # mid-flow: more orders are still coming
                written = len(out_events(out))
            wait_for("the feed is published", lambda: caught_up(settings, side))
            expected = [e["id"] for e in feed_events(settings)]
            wait_for(
                "the standby has taken over and written the rest",
                lambda: len(out_events(out)) >= len(expected),
            )
        finally:
            kill(second) if second.poll() is None else None
            kill(first) if first.poll() is None else None
    assert [e["id"] for e in out_events(out)] == expected
    assert written < len(expected), "the first consumer was killed before the end"
    assert partition.subjects() == [f"farmacy.feed.*.{p}" for p in range(PARTITIONS)]


def test_a_consumer_of_one_partition_sees_only_its_fridges_in_order(
    settings: Settings, side: WriteSide, world: World, tmp_path: Path
) -> None:
    other = make_world(side, soup_units=10, salad_units=10)
    for _ in range(6):  # more fridges, so more than one partition has events
        make_world(side, soup_units=1, salad_units=0)
    side.ordering.place("c", "k", other.fridge_id, {other.soup: 1})
    with feed_worker(settings, side), relay_thread(settings, side):
        wait_for("the relay has published the feed", lambda: caught_up(settings, side))
        feed = feed_events(settings)
        mine = next(e["partition"] for e in feed)
        expected = [e["id"] for e in feed if e["partition"] == mine]
        out = tmp_path / "mine.jsonl"
        consumer = farmacy(
            settings,
            *("feed", "consume", "--partition", f"{mine}/{PARTITIONS}", "--out", str(out)),
        )
        try:
            wait_for(
                "the consumer has its partition",
                lambda: len(out_events(out)) >= len(expected),
            )
        finally:
            consumer.terminate()
            consumer.wait(timeout=30)
    assert [e["id"] for e in out_events(out)] == expected
    assert len({e["partition"] for e in feed}) > 1, "the test needs events in several partitions"
