"""Placed to ready for pickup, over HTTP, with the simulated processor answering at once.

    .venv/bin/python -m ops.bench.money [--rate 100] [--seconds 20] [--fridges 20]
        [--store sqlite|postgres] [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres]

Starts, on a fresh SQLite data directory (or a fresh PostgreSQL database, dropped after), the
API, a worker (reservations, orders), the fulfilment process and the simulated processor
(`--delay 0`), each a process of its own, as `farmacy run` does. Customers then place orders
open-loop at `--rate` per second, spread over `--fridges` fridges. Two latencies from the
same run: the order's own (POST /orders, as the client saw it) and placed-to-ready (from the
reservation's `reserved_at` to the order's `ReadyForPickup`, both read from the event store
afterwards, so no polling skews them).
Target (issue 19): placed-to-ready p99 under 500 ms at 100 orders per second.

The client shares the machine with what it measures, so it says what it cost: its own CPU
while placing, as a share of one core. Tokens are signed before the clock starts, and the
requests are spread over several small connection pools (httpx's pool scans every
connection for every queued request: one pool of 128 took most of the client's time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from domain.fridge import Fridge
from domain.order import Order
from interfaces.http.auth import Role, issue_token
from ops.bench.common import ADMIN_DSN, bench_database, stock_up
from ops.root import build_write_side
from ops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    with (settings.data_dir / f"{args[0]}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *args],
            cwd=ROOT,
            env={**os.environ, **settings.as_env(), "FARMACY_LOG_FORMAT": "json"},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer") from None
            time.sleep(0.1)


def load_average() -> str:
    """The machine's load (1, 5, 15 min): what else was running shows in every figure."""
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


POOLS = 16
"""Connection pools the client spreads its requests over, of 8 connections each."""


async def place_all(
    api: str, secret: str, fridges: list[str], meal: str, rate: float, seconds: float
) -> tuple[list[float], float]:
    """Orders open-loop at `rate` per second: each one's latency in ms as the client saw it,
    and the client's own CPU while placing them, as a share of one core."""
    latencies: list[float] = []
    count = int(rate * seconds)
    headers = [
        {
            "Authorization": f"Bearer {issue_token(secret, Role.CUSTOMER, f'bench-{n}')}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        for n in range(count)
    ]
    limits = httpx.Limits(max_connections=8)
    timeout = httpx.Timeout(60, pool=None)  # a slow server shows as latency, not as errors
    clients = [
        httpx.AsyncClient(base_url=api, timeout=timeout, limits=limits) for _ in range(POOLS)
    ]

    async def one(n: int) -> None:
        body = {"fridge_id": fridges[n % len(fridges)], "lines": [{"meal_id": meal, "quantity": 1}]}
        started = time.perf_counter()
        try:
            answer = await clients[n % POOLS].post("/orders", json=body, headers=headers[n])
        except httpx.HTTPError:
            return  # counted as not placed
        if answer.status_code == 201:
            latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    cpu, begun = time.process_time(), time.perf_counter()
    for n in range(count):
        delay = begun + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    share = (time.process_time() - cpu) / (time.perf_counter() - begun)
    for client in clients:
        await client.aclose()
    return latencies, share


def placed_to_ready(settings: Settings, wait: float) -> tuple[list[float], int]:
    """Milliseconds from each reservation to its order's ReadyForPickup, and how many orders
    were reserved; waits up to `wait` seconds for the stragglers."""
    deadline = time.monotonic() + wait
    while True:
        side = build_write_side(settings)
        try:
            reserved: dict[str, datetime] = {}
            ready: dict[str, datetime] = {}
            for notification in side.store.recorder.select_notifications(start=1, limit=10**7):
                event = side.store.mapper.to_domain_event(notification)
                if isinstance(event, Fridge.MealsReserved):
                    reserved[event.order_id] = event.reserved_at
                elif isinstance(event, Order.ReadyForPickup):
                    ready[str(event.originator_id)] = event.timestamp
        finally:
            side.close()
        if len(ready) >= len(reserved) or time.monotonic() > deadline:
            spans = [
                (ready[o] - reserved[o]).total_seconds() * 1000 for o in ready if o in reserved
            ]
            return spans, len(reserved)
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fridges", type=int, default=20)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--admin-dsn", default=ADMIN_DSN, help="where to make the database")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="farmacy-money-bench-"))
    if args.store == "sqlite":
        run(Settings(store="sqlite", data_dir=data), args)
        return
    with bench_database(args.admin_dsn) as dsn:
        run(Settings(store="postgres", postgres_dsn=dsn, data_dir=data), args)


def run(settings: Settings, args: argparse.Namespace) -> None:
    load_before = load_average()
    api_port, simulator_port = free_port(), free_port()
    settings = replace(settings, payments_url=f"http://127.0.0.1:{simulator_port}")
    side = build_write_side(settings)
    units = int(args.rate * args.seconds) // args.fridges + 10
    fridges = [f"bench-fridge-{n}" for n in range(args.fridges)]
    try:
        side.catalogue.register_city("bench-city", "Berlin", "Europe/Berlin")
        side.catalogue.register_venue("bench-venue", "bench-city", "Bench")
        side.catalogue.register_meal("bench-soup", "Soup", "6.50", "EUR")
        best_before = (datetime.now(UTC) + timedelta(days=2)).date()
        for fridge in fridges:
            side.catalogue.install_fridge(fridge, "bench-venue")
            stock_up(side, fridge, {"bench-soup": units}, best_before, f"d-{fridge}")
    finally:
        side.close()
    api = f"http://127.0.0.1:{api_port}"
    processes = [
        start(settings, "api", "--port", str(api_port)),
        start(settings, "worker", "--projection", "reservations", "--projection", "orders"),
        start(settings, "payments", "simulate", "--port", str(simulator_port),
              "--webhook-url", f"{api}/payments/webhook", "--delay", "0"),
        start(settings, "fulfil"),
    ]  # fmt: skip
    try:
        wait_for(f"{api}/healthz")
        wait_for(f"{settings.payments_url}/ledger")
        posted, client_cpu = asyncio.run(
            place_all(api, settings.secret, fridges, "bench-soup", args.rate, args.seconds)
        )
        spans, reserved = placed_to_ready(settings, wait=120)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    print(f"store: {settings.store}; load average before: {load_before}")
    print(f"orders placed: {len(posted)} of {int(args.rate * args.seconds)} at {args.rate:g}/s")
    print(f"POST /orders ms: p50 {statistics.median(posted):.1f} p99 {percentile(posted, 99):.1f}")
    if spans:
        print(
            f"placed to ready ms: p50 {statistics.median(spans):.1f} "
            f"p99 {percentile(spans, 99):.1f} ({len(spans)} of {reserved} ready)"
        )
    print(f"client CPU while placing: {client_cpu:.0%} of one core")
    print(f"load average after: {load_average()}")
    print(f"data: {settings.data_dir}")


if __name__ == "__main__":
    main()
