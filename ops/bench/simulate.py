"""The simulator's load on PostgreSQL with 1, 2, 3 API processes (issue 22, scale rows).

For each count of API processes: a fresh database, the main job's processes on it (a worker
per read model, fulfilment, snapshots) and `farmacy api --workers N`, then `farmacy simulate`
run in this process with a flat day at a rate above what the API can take, so what it reaches
is the deployment's throughput. Prints one JSON line per row and the ratio against 1 process;
`--reports DIR` keeps each run's whole report.

    .venv/bin/python -m ops.bench.simulate [--apis 1,2,3] [--rate 600] [--duration 60]
        [--fridges 40] [--cities 4] [--connections 64] [--reports DIR] [--shape flat|lunch]

`--apis 2 --shape lunch --duration 300 --rate 60` is the documented longer run: a whole
simulated day on PostgreSQL, its invariants checked at the end.

The simulator shares the machine with the API: its own CPU is reported beside the API's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from interfaces.http.auth import Role, issue_token
from interfaces.simulator.profile import Profile
from interfaces.simulator.run import Plan, simulate
from ops.bench.common import ADMIN_DSN, bench_database, parse_list
from ops.bench.http import cpu_seconds
from ops.supervisor import Child, child_env, farmacy_children, supervise
from projections.models import PROJECTIONS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(base: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the API at {base} did not become ready in {seconds:.0f} s")


def one_row(apis: int, args: argparse.Namespace) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    with bench_database(ADMIN_DSN) as dsn:
        env = {
            **child_env(),
            **os.environ,
            "FARMACY_STORE": "postgres",
            "FARMACY_POSTGRES_DSN": dsn,
            "FARMACY_SECRET": secret,
            "FARMACY_LOG_FORMAT": "json",
            "FARMACY_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        children = farmacy_children(sorted(PROJECTIONS), "127.0.0.1", port)
        api = children[-1]
        children[-1] = Child(api.name, [*api.args[:-1], str(apis)])
        stop = threading.Event()
        supervisor = threading.Thread(target=supervise, args=(children, stop, env))
        supervisor.start()
        try:
            base = f"http://127.0.0.1:{port}"
            healthy(base)
            plan = Plan(
                base,
                seed=args.seed,
                rate=args.rate,
                duration=args.duration,
                cities=args.cities,
                fridges=args.fridges,
                connections=args.connections,
            )

            def tokens(role: str, subject: str) -> str:
                return issue_token(secret, Role(role), subject, timedelta(hours=2))

            api_pid = children[-1].process.pid if children[-1].process else 0
            cpu_before, own_before = cpu_seconds(api_pid), time.process_time()
            profile = Profile(flat=args.shape == "flat")
            outcome = asyncio.run(simulate(plan, tokens, lambda _: None, profile))
            report = outcome.report
            api_cpu = cpu_seconds(api_pid) - cpu_before
            own_cpu = time.process_time() - own_before
        finally:
            stop.set()
            supervisor.join()
    if args.reports:
        Path(args.reports).mkdir(parents=True, exist_ok=True)
        (Path(args.reports) / f"apis-{apis}.json").write_text(json.dumps(report, indent=2))
    routes = report["routes"]
    return {
        "apis": apis,
        "requests_per_s": report["rate_in_day"],
        "requests": report["requests_in_day"],
        "orders_placed": report["orders"].get("placed", 0),
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "place_order_p99_ms": routes.get("place_order", {}).get("p99_ms"),
        "venue_menu_p99_ms": routes.get("venue_menu", {}).get("p99_ms"),
        "errors": report["errors"],
        "dropped_sessions": report["dropped_sessions"],
        "api_cpu_s": round(api_cpu, 1),
        "simulator_cpu_s": round(own_cpu, 1),
        "broken": report["invariants"]["broken"][:1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", type=parse_list, default=["1", "2", "3"])
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--fridges", type=int, default=40)
    parser.add_argument("--cities", type=int, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reports", default=None)
    parser.add_argument("--shape", choices=["flat", "lunch"], default="flat")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for apis in (int(n) for n in args.apis):
        row = one_row(apis, args)
        if rows:
            row["ratio_to_first"] = round(row["requests_per_s"] / rows[0]["requests_per_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
