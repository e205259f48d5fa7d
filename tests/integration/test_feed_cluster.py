"""The feed on a three-node JetStream cluster (streams replicated three times): a server killed
while the relay publishes and a consumer reads loses nothing acknowledged, and both go on."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import nats
import pytest

from interfaces.feed.consumer import JsonLines, Partition, run_consumer
from interfaces.feed.jetstream import STREAM
from ops.root import build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.feed_rig import (
    Workload,
    feed_events,
    feed_reached_head,
    feed_worker,
    relay_thread,
    stream_messages,
    wait_for,
)
from tests.integration.nats_servers import three_node_cluster
from tests.integration.test_feed_jetstream import assert_stream_is_the_feed, out_events
from tests.integration.world import make_world


async def _leader(url: str) -> str | None:
    nc = await nats.connect(url.split(","))
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return info.cluster.leader if info.cluster else None
    finally:
        await nc.close()


@pytest.mark.slow
def test_killing_the_streams_leader_loses_nothing_and_both_go_on(tmp_path: Path) -> None:
    with three_node_cluster(tmp_path) as servers:
        url = ",".join(server.url for server in servers)
        settings = Settings(store="sqlite", data_dir=tmp_path / "data", nats_url=url)
        side = build_write_side(settings, clock=FakeClock())
        world = make_world(side, soup_units=200, salad_units=200)
        out = tmp_path / "consumer.jsonl"
        stop = threading.Event()
        consumer = threading.Thread(
            target=run_consumer,
            args=(url, Partition.parse("0/1"), JsonLines(out), stop, 2.0, 3),
            daemon=True,
        )
        killed = threading.Event()
        workload = Workload(side, world, orders=40, pause=0.1, halfway=killed)
        try:
            with feed_worker(settings, side), relay_thread(settings, side, replicas=3):
                consumer.start()
                with workload.running():
                    wait_for("events reach the consumer", lambda: len(out_events(out)) > 3)
                    leader = asyncio.run(_leader(url))
                    victim = next(s for s in servers if s.name == leader)
                    before = len(stream_messages(url))
                    victim.kill()  # the stream's leader, mid-flow
                    killed.set()  # the workload's second half comes after the kill
                wait_for("the feed has every event", lambda: feed_reached_head(settings, side))
                wait_for(
                    "the relay publishes the rest under the new leader",
                    lambda: len(stream_messages(url)) >= len(feed_events(settings)),
                    timeout=90,
                )
                wait_for(
                    "the consumer reads the rest",
                    lambda: len(out_events(out)) >= len(feed_events(settings)),
                    timeout=90,
                )
        finally:
            stop.set()
            consumer.join(timeout=30)
            side.close()
        assert_stream_is_the_feed(settings)
        assert [e["id"] for e in out_events(out)] == [e["id"] for e in feed_events(settings)]
        assert 0 < before < len(feed_events(settings)), "killed while events flowed"
