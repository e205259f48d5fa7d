"""HTTP (issue 4): a real `farmacy api` server on localhost, loaded from this separate process.

Seeds a fresh store (SQLite by default, or a fresh PostgreSQL schema), starts the projection
workers (`farmacy worker`, a process of its own) and one API process exactly as `farmacy api`
runs it (uvicorn, uvloop, httptools), then drives it over keep-alive HTTP/1.1 connections
from asyncio (a minimal client, so the load generator costs the shared 2 cores little):

- healthz:  GET /healthz, the trivial JSON endpoint: the server's ceiling in this run;
- menu:     GET /venues/{venue}/menu, a random venue of 20 (10 fridges and 6 meals each);
- spread:   POST /orders, one unit at a random fridge of 200;
- hot:      POST /orders, one unit, all at one fridge.

Each at several concurrencies (connections), for a few seconds each. Reported: requests/s,
p50 and p99, and the ratio to /healthz at the same concurrency. Targets (at the concurrency
where each kind's throughput peaks): order p99 < 100 ms, menu p99 < 20 ms. The peak is taken
two ways, each with its verdict: the knee (the fewest connections reaching 90 % of the best
rate) and the single fastest row. Finally the
server is topped up to 100,000 requests and its RSS is read from /proc (target < 250 MB).

With `--api-workers N` the server is `farmacy api --workers N` (uvicorn's supervisor and N
processes sharing the port); the RSS reported is then the largest of its processes.

With `--peer` (issue 8; PostgreSQL only) the run measures orders only, against the plain
service (`ops/bench/plain_service.py`: Litestar and psycopg, one `UPDATE ... WHERE qty >= n`
and one `INSERT` per order, in one transaction) started beside Farmacy with as many server
processes (default 2 each): hot (one fridge) and spread (100 fridges), Farmacy then the peer
at each concurrency, same client. Reported: both rates and p99s and `farmacy ÷ peer`, with
verdicts at the highest concurrency (>= 1.0 times the peer, aiming for 1.5; p99 < 100 ms),
and the CPU each server's processes spent per order while each row ran (/proc, user + system).

With `--affine` (and `--peer`) Farmacy's N API processes listen on ports of their own and
each fridge's orders go to one of them (a stable hash of the fridge id), as a load balancer
hashing on the fridge would send them: no two processes write the same fridge. The peer is
served as before (its processes share nothing but the database, so routing changes nothing
for it).

    .venv/bin/python -m ops.bench.http [--store sqlite|postgres] [--concurrency 1,4,8,16,32,64]
        [--seconds 3] [--api-workers 1] [--peer [--peer-pool 16] [--affine]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg

from interfaces.http.auth import Role, issue_token
from ops.bench import cpu, plain_service
from ops.bench.common import ADMIN_DSN, stock_up
from ops.root import build_write_side
from ops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VENUES, FRIDGES_PER_VENUE = 20, 10
MEALS = [f"meal-{n}" for n in range(6)]
BIG_STOCK = 10_000_000
RSS_AFTER = 100_000
TARGETS_MS = {"spread": 100.0, "hot": 100.0, "menu": 20.0}
RSS_TARGET_MB = 250.0
# Where throughput peaks: the fewest connections that reach KNEE of the best rate measured.
# Past that point the rate is flat within the run's noise and more connections only queue
# (closed loop: latency ~ connections / rate), so the single fastest row is whichever flat
# row the noise favoured; both are printed, with a verdict each.
KNEE = 0.9
PEER_SPREAD_FRIDGES = 100
PEER_RATIO_TARGET, PEER_RATIO_AIM, PEER_P99_MS = 1.0, 1.5, 100.0


@dataclass
class Result:
    kind: str
    concurrency: int
    seconds: float
    target: str = "farmacy"
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    cpu_seconds: float = float("nan")  # the serving processes' CPU while this row ran

    @property
    def cpu_ms_per_answer(self) -> float:
        return self.cpu_seconds * 1000 / len(self.latencies) if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


# ---- a small keep-alive HTTP/1.1 client ----------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


def request(method: str, path: str, token: str, body: bytes = b"", key: str = "") -> bytes:
    headers = [f"{method} {path} HTTP/1.1", "Host: bench", f"Authorization: Bearer {token}"]
    if key:
        headers.append(f"Idempotency-Key: {key}")
    if body:
        headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


Route = tuple[int, Callable[[], bytes]]
"""Where a connection goes and what it sends: a port and a request maker."""


async def drive(
    routes: list[Route],
    concurrency: int,
    seconds: float,
    kind: str,
    target: str = "farmacy",
) -> Result:
    """`concurrency` keep-alive connections for `seconds`; connection i takes route i mod N."""
    result = Result(kind, concurrency, seconds, target)
    stop_at = time.perf_counter() + seconds

    async def connection(port: int, make: Callable[[], bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                payload = make()
                started = time.perf_counter()
                writer.write(payload)
                status = await asyncio.wait_for(read_response(reader), timeout=30)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(*routes[n % len(routes)]) for n in range(concurrency)))
    return result


# ---- the world and the server ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(store: str) -> tuple[Settings, Callable[[], None]]:
    if store == "sqlite":
        data_dir = Path(tempfile.mkdtemp(prefix="farmacy-bench-http-"))
        return Settings(store="sqlite", data_dir=data_dir), lambda: None
    schema = f"bench_http_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return Settings(store="postgres", postgres_dsn=ADMIN_DSN, postgres_schema=schema), drop


def seed(settings: Settings) -> tuple[list[str], list[str]]:
    """20 venues of 10 fridges, each stocked with six meals; the venue and fridge ids."""
    side = build_write_side(settings)
    try:
        side.catalogue.register_city("bench-city", "Bench City", "Europe/Berlin")
        for meal in MEALS:
            side.catalogue.register_meal(meal, meal.title(), "7.50", "EUR")
        best_before = (side.clock() + timedelta(days=3)).date()
        venues: list[str] = []
        fridges: list[str] = []
        for v in range(VENUES):
            venue = f"venue-{v}"
            side.catalogue.register_venue(venue, "bench-city", f"Venue {v}")
            venues.append(venue)
            for f in range(FRIDGES_PER_VENUE):
                fridge = f"fridge-{v}-{f}"
                side.catalogue.install_fridge(fridge, venue)
                # orders take MEALS[0]; the first fridge is the hot one
                units = {**dict.fromkeys(MEALS, 1_000), MEALS[0]: 20_000}
                if not fridges:
                    units[MEALS[0]] = 150_000
                stock_up(side, fridge, units, best_before, "bench-delivery")
                fridges.append(fridge)
    finally:
        side.close()
    return venues, fridges


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_env(), "FARMACY_LOG_FORMAT": "json"}


def start(
    settings: Settings, ports: list[int], api_workers: int = 1
) -> tuple[subprocess.Popen[bytes], list[subprocess.Popen[bytes]]]:
    """The workers, and `farmacy api --workers N` on each port (one port, but for --affine)."""
    env = environment(settings)

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    workers = spawn("-m", "interfaces.cli.projections", "worker")
    # exactly what `farmacy api --port PORT --workers N` runs
    apis = [
        spawn(
            "-c",
            "from interfaces.cli.http import api_command; "
            f"api_command('127.0.0.1', {port}, {api_workers})",
        )
        for port in ports
    ]
    deadline = time.monotonic() + 60
    for port, api in zip(ports, apis, strict=True):
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                stop([*apis, workers])
                raise SystemExit("the API did not become ready within 60 s")
            time.sleep(0.1)
    return workers, apis


def start_peer(
    settings: Settings, fridges: list[str], port: int, workers: int, pool: int
) -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
    """The plain service in a schema of its own, stocked like Farmacy's fridges, served with
    `workers` processes; the process and how to drop its schema."""
    schema = f"{settings.postgres_schema}_plain"
    plain_service.stock(ADMIN_DSN, schema, fridges, MEALS, BIG_STOCK)

    def drop() -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    peer = subprocess.Popen(
        [
            *(sys.executable, "-m", "ops.bench.plain_service", "--dsn", ADMIN_DSN),
            *("--schema", schema, "--port", str(port)),
            *("--workers", str(workers), "--pool", str(pool)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)  # any answer: it is serving
            return peer, drop
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or peer.poll() is not None:
            peer.kill()
            drop()
            raise SystemExit("the plain service did not start within 60 s")
        time.sleep(0.1)


process_tree = cpu.tree  # the process and its descendants (uvicorn's `--workers N` children)


def rss_mb(pid: int) -> float:
    """The process's RSS, or with `--workers N` the largest of it and its descendants."""
    sizes = []
    for current in process_tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return max(sizes, default=float("nan"))


def cpu_seconds(*pids: int) -> float:
    """User and system CPU the processes and their descendants have used so far."""
    found = (cpu.ticks(each) for pid in pids for each in process_tree(pid))
    return sum(ticks for ticks in found if ticks is not None) / cpu.TICKS


# ---- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--concurrency", default="1,4,8,16,32,64")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--api-workers", type=int, help="farmacy api --workers N (default 1; 2 with --peer)"
    )
    parser.add_argument("--peer", action="store_true", help="orders against the plain service")
    parser.add_argument("--peer-pool", type=int, default=plain_service.POOL_SIZE)
    parser.add_argument(
        "--affine",
        action="store_true",
        help="with --peer: Farmacy's API processes on ports of their own, each fridge's "
        "orders sent to one of them (a load balancer hashing on the fridge)",
    )
    args = parser.parse_args()
    if args.peer and args.store != "postgres":
        parser.error("--peer runs on PostgreSQL: add --store postgres")
    if args.affine and not args.peer:
        parser.error("--affine goes with --peer")
    api_workers = args.api_workers or (2 if args.peer else 1)
    levels = [int(n) for n in args.concurrency.split(",")]
    settings, cleanup = settings_for(args.store)
    began = time.monotonic()
    venues, fridges = seed(settings)
    if args.affine:  # N processes of one worker each, one port each
        ports, per_port = [free_port() for _ in range(api_workers)], 1
    else:  # one port shared by N processes, as `farmacy api --workers N`
        ports, per_port = [free_port()], api_workers
    workers, apis = start(settings, ports, per_port)
    print(
        f"store {args.store}; API pids {[api.pid for api in apis]} ({api_workers} worker "
        f"processes) on ports {ports}; load {os.getloadavg()}"
    )
    try:
        if args.peer:
            run_peer(settings, fridges, ports, [api.pid for api in apis], api_workers, args, levels)
            print(f"whole run {time.monotonic() - began:.0f} s; load average now {os.getloadavg()}")
            return
        port, api = ports[0], apis[0]
        results = asyncio.run(measure(port, settings, venues, fridges, levels, args.seconds))
        served = sum(len(r.latencies) for r in results)
        before_top_up = rss_mb(api.pid)
        token = issue_token(settings.secret, Role.CUSTOMER, "bench")
        paths = [f"/venues/{venue}/menu" for venue in venues] + ["/healthz"] * VENUES
        while served < RSS_AFTER:  # top up with menus and /healthz, half and half
            top = asyncio.run(
                drive([(port, lambda: request("GET", random.choice(paths), token))], 32, 2.0, "top")
            )
            served += len(top.latencies)
        rss = rss_mb(api.pid)
        report(results, served, before_top_up, rss, time.monotonic() - began)
    finally:
        stop([*apis, workers])
        cleanup()


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def run_peer(
    settings: Settings,
    fridges: list[str],
    ports: list[int],
    api_pids: list[int],
    workers: int,
    args: argparse.Namespace,
    levels: list[int],
) -> None:
    peer_port = free_port()
    peer, drop = start_peer(settings, fridges, peer_port, workers, args.peer_pool)
    print(f"plain service pid {peer.pid} ({workers} processes, pool {args.peer_pool} each)")
    try:
        results = asyncio.run(
            measure_peer(ports, api_pids, peer_port, peer.pid, settings, fridges, levels, args)
        )
    finally:
        stop([peer])
        drop()
    report_peer(results)


async def measure(
    port: int,
    settings: Settings,
    venues: list[str],
    fridges: list[str],
    levels: list[int],
    seconds: float,
) -> list[Result]:
    customers = [issue_token(settings.secret, Role.CUSTOMER, f"c-{n}") for n in range(64)]
    hot = fridges[0]

    def order(fridge_of: Callable[[], str]) -> Callable[[], bytes]:
        def make() -> bytes:
            body = {"fridge_id": fridge_of(), "lines": [{"meal_id": MEALS[0], "quantity": 1}]}
            token = random.choice(customers)
            return request("POST", "/orders", token, json.dumps(body).encode(), uuid.uuid4().hex)

        return make

    kinds: dict[str, Callable[[], bytes]] = {
        "healthz": lambda: request("GET", "/healthz", customers[0]),
        "menu": lambda: request("GET", f"/venues/{random.choice(venues)}/menu", customers[0]),
        "spread": order(lambda: random.choice(fridges)),
        "hot": order(lambda: hot),
    }
    results = []
    for concurrency in levels:
        for kind, make in kinds.items():
            result = await drive([(port, make)], concurrency, seconds, kind)
            results.append(result)
            print(
                f"  {kind:>7} x{concurrency:<3} {result.rate:8.1f}/s p50 "
                f"{result.percentile(0.5):7.2f} ms p99 {result.percentile(0.99):7.2f} ms "
                f"{dict(result.statuses)}",
                flush=True,
            )
    return results


def report(results: list[Result], served: int, rss_before: float, rss: float, took: float) -> None:
    healthz = {r.concurrency: r.rate for r in results if r.kind == "healthz"}
    print("\n| kind | concurrency | req/s | p50 ms | p99 ms | ÷ /healthz | statuses |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(r.statuses.items()))
        print(
            f"| {r.kind} | {r.concurrency} | {r.rate:,.0f} | {r.percentile(0.5):.2f} | "
            f"{r.percentile(0.99):.2f} | {r.rate / healthz[r.concurrency]:.3f} | {statuses} |"
        )
    print()
    for kind, target in TARGETS_MS.items():
        rows = sorted((r for r in results if r.kind == kind), key=lambda r: r.concurrency)
        fastest = max(rows, key=lambda r: r.rate)
        knee = next(r for r in rows if r.rate >= KNEE * fastest.rate)
        for name, row in (("knee", knee), ("fastest row", fastest)):
            p99 = row.percentile(0.99)
            verdict = "PASS" if p99 < target else "MISS"
            print(
                f"{verdict}: {kind} p99 {p99:.1f} ms < {target:.0f} ms at its {name} "
                f"({row.rate:,.0f}/s with {row.concurrency} connections)"
            )
    verdict = "PASS" if rss < RSS_TARGET_MB else "MISS"
    print(
        f"{verdict}: API RSS {rss:.0f} MB < {RSS_TARGET_MB:.0f} MB after {served:,} requests "
        f"({rss_before:.0f} MB before the last {served - sum(len(r.latencies) for r in results):,})"
    )
    print(f"whole run {took:.0f} s; load average now {os.getloadavg()}")


def order_request(customers: list[str], fridge_of: Callable[[], str]) -> Callable[[], bytes]:
    """POST /orders of one unit at `fridge_of()`, as a random customer, with a fresh key."""

    def make() -> bytes:
        body = {"fridge_id": fridge_of(), "lines": [{"meal_id": MEALS[0], "quantity": 1}]}
        token = random.choice(customers)
        return request("POST", "/orders", token, json.dumps(body).encode(), uuid.uuid4().hex)

    return make


def owner(fridge: str, processes: int) -> int:
    """Which of `processes` API processes a load balancer hashing on the fridge sends it to."""
    return zlib.crc32(fridge.encode()) % processes


def affine_routes(
    ports: list[int], make_for: Callable[[list[str]], Callable[[], bytes]], fridges: list[str]
) -> list[Route]:
    """One route per API process that owns any of `fridges`: its port, and orders at the
    fridges it owns (the hot fridge's orders all go to its one owner)."""
    routes = []
    for index, port in enumerate(ports):
        owned = [fridge for fridge in fridges if owner(fridge, len(ports)) == index]
        if owned:
            routes.append((port, make_for(owned)))
    return routes


async def measure_peer(
    ports: list[int],
    api_pids: list[int],
    peer_port: int,
    peer_pid: int,
    settings: Settings,
    fridges: list[str],
    levels: list[int],
    args: argparse.Namespace,
) -> list[Result]:
    """At each concurrency, each kind: Farmacy, then the peer, with the same requests. With
    `--affine` a Farmacy connection goes to the process owning the fridges it orders at."""
    customers = [issue_token(settings.secret, Role.CUSTOMER, f"c-{n}") for n in range(64)]

    def at_random(among: list[str]) -> Callable[[], bytes]:
        return order_request(customers, lambda: random.choice(among))

    kinds = {"hot": fridges[:1], "spread": fridges[:PEER_SPREAD_FRIDGES]}
    pids = {"farmacy": api_pids, "peer": [peer_pid]}
    results = []
    for concurrency in levels:
        for kind, among in kinds.items():
            routes: dict[str, list[Route]] = {
                "farmacy": affine_routes(ports, at_random, among)
                if args.affine
                else [(ports[0], at_random(among))],
                "peer": [(peer_port, at_random(among))],
            }
            for target, where in routes.items():
                cpu_before = cpu_seconds(*pids[target])
                result = await drive(where, concurrency, args.seconds, kind, target)
                result.cpu_seconds = cpu_seconds(*pids[target]) - cpu_before
                results.append(result)
                print(
                    f"  {target:>7} {kind:>6} x{concurrency:<3} {result.rate:8.1f}/s p50 "
                    f"{result.percentile(0.5):7.2f} ms p99 {result.percentile(0.99):7.2f} ms "
                    f"CPU {result.cpu_ms_per_answer:.2f} ms/answer {dict(result.statuses)}",
                    flush=True,
                )
    return results


def report_peer(results: list[Result]) -> None:
    rows = {(r.target, r.kind, r.concurrency): r for r in results}
    print(
        "\n| kind | connections | farmacy orders/s | p99 ms | peer orders/s | p99 ms "
        "| farmacy ÷ peer | CPU ms/order farmacy | peer | farmacy statuses | peer statuses |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    levels = sorted({r.concurrency for r in results})
    for kind in ("hot", "spread"):
        for concurrency in levels:
            ours, peer = rows["farmacy", kind, concurrency], rows["peer", kind, concurrency]
            print(
                f"| {kind} | {concurrency} | {ours.rate:,.0f} | {ours.percentile(0.99):.1f} | "
                f"{peer.rate:,.0f} | {peer.percentile(0.99):.1f} | "
                f"{ours.rate / peer.rate if peer.rate else float('nan'):.2f} | "
                f"{ours.cpu_ms_per_answer:.2f} | {peer.cpu_ms_per_answer:.2f} | "
                f"{statuses(ours)} | {statuses(peer)} |"
            )
    print()
    top = levels[-1]
    for kind in ("hot", "spread"):
        ours, peer = rows["farmacy", kind, top], rows["peer", kind, top]
        ratio = ours.rate / peer.rate if peer.rate else float("nan")
        verdict = "PASS" if ratio >= PEER_RATIO_TARGET else "MISS"
        aim = "reached" if ratio >= PEER_RATIO_AIM else "not reached"
        print(
            f"{verdict}: {kind} at {top} connections: farmacy ÷ peer {ratio:.2f} >= "
            f"{PEER_RATIO_TARGET:.1f} (aim {PEER_RATIO_AIM:.1f}: {aim}); "
            f"{ours.rate:,.0f}/s against {peer.rate:,.0f}/s"
        )
        p99 = ours.percentile(0.99)
        verdict = "PASS" if p99 < PEER_P99_MS else "MISS"
        print(
            f"{verdict}: {kind} at {top} connections: farmacy p99 {p99:.1f} ms < "
            f"{PEER_P99_MS:.0f} ms (peer p99 {peer.percentile(0.99):.1f} ms)"
        )


def statuses(result: Result) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))


if __name__ == "__main__":
    main()
