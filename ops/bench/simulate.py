"""The simulator's load on PostgreSQL with 1, 2, 3 API processes (issue 22, scale rows).

For each count of API processes: a fresh database, the main job's processes on it (a worker
per read model, fulfilment, snapshots, the simulated processor) and N API processes, either
behind the load balancer (`--api-mode balancer`, Caddy hashing orders on their fridge: the
deployment's shape) or `farmacy api --workers N` on one shared socket (`--api-mode
workers`). Then `farmacy simulate` with a flat day at a rate above what the API can take,
split over `--clients` simulator processes so the client is not the limit, so what it
reaches is the deployment's throughput. Prints one JSON line per row, the ratio against the
first, and where the CPU went (ms per request: API, balancer, workers, other processes,
PostgreSQL, simulator), which says what binds. `--reports DIR` keeps each run's report.

    .venv/bin/python -m ops.bench.simulate [--apis 1,2,3] [--rate 600] [--duration 60]
        [--fridges 40] [--cities 4] [--connections 64] [--clients 2]
        [--api-mode balancer|workers] [--reports DIR] [--shape flat|lunch]

`--apis 2 --shape lunch --duration 600 --rate 60` is the documented longer run: a whole
simulated day on PostgreSQL, its invariants checked at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from interfaces.cli.simulate import Signer
from interfaces.simulator.profile import Profile
from interfaces.simulator.run import Plan, simulate_all
from ops.bench import cpu
from ops.bench.common import ADMIN_DSN, bench_database, parse_list
from ops.supervisor import Child, child_env, farmacy_children, simulator_port, supervise
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


def groups_of(children: list[Child], database: str) -> dict[str, list[int]]:
    """The row's processes by kind, for ops/bench/cpu.py (API: each process and its uvicorn
    children)."""
    found: dict[str, list[int]] = {}
    for child in children:
        if child.process is None:
            continue
        kind = child.name.split(":")[0]
        kind = kind if kind in ("api", "balancer", "worker") else "other"
        found.setdefault(kind, []).extend(cpu.tree(child.process.pid))
    server = cpu.postgres_processes(database)
    found["postgres"] = server["backends"] + server["auxiliaries"]
    return found


def one_row(apis: int, args: argparse.Namespace) -> dict[str, Any]:
    secret = secrets.token_hex(32)
    load_before = os.getloadavg()
    port = free_port()
    with bench_database(ADMIN_DSN) as dsn, tempfile.TemporaryDirectory() as data_dir:
        env = {
            **child_env(),
            **os.environ,
            "FARMACY_STORE": "postgres",
            "FARMACY_POSTGRES_DSN": dsn,
            "FARMACY_SECRET": secret,
            "FARMACY_LOG_FORMAT": "json",
            "FARMACY_LOG_LEVEL": "WARNING",
            # fulfilment asks the main job's simulated processor, which answers by webhook
            "FARMACY_PAYMENTS_URL": f"http://127.0.0.1:{simulator_port(port)}",
            "FARMACY_PAYMENT_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
            "FARMACY_DATA_DIR": data_dir,
        }
        if args.api_mode == "balancer":
            children = farmacy_children(sorted(PROJECTIONS), "127.0.0.1", port, apis)
        else:
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
                processes=args.clients,
            )
            database = str(conninfo_to_dict(dsn)["dbname"])
            before = cpu.Sample.take(groups_of(children, database))
            profile = Profile(flat=args.shape == "flat")
            outcome = simulate_all(plan, Signer(secret), lambda _: None, profile)
            spent = cpu.Sample.take(groups_of(children, database)).since(before)
            report = outcome.report
        finally:
            stop.set()
            supervisor.join()
    if args.reports:
        Path(args.reports).mkdir(parents=True, exist_ok=True)
        name = f"apis-{apis}-{args.api_mode}-clients-{args.clients}.json"
        (Path(args.reports) / name).write_text(json.dumps({**report, "cpu_s": spent}, indent=2))
    spent["simulator"] = outcome.cpu_seconds
    requests = max(1, report["requests"])
    routes = report["routes"]
    return {
        "apis": apis,
        "api_mode": args.api_mode,
        "clients": args.clients,
        "requests_per_s": report["rate_in_day"],
        "requests": report["requests_in_day"],
        "day_s": report["seconds"],
        "orders_placed": report["orders"].get("placed", 0),
        "p50_ms": report["p50_ms"],
        "p99_ms": report["p99_ms"],
        "place_order_p99_ms": routes.get("place_order", {}).get("p99_ms"),
        "venue_menu_p99_ms": routes.get("venue_menu", {}).get("p99_ms"),
        "errors": report["errors"],
        "dropped_sessions": report["dropped_sessions"],
        "cpu_s": {k: round(v, 1) for k, v in sorted(spent.items())},
        "cpu_ms_per_request": {k: round(1000 * v / requests, 2) for k, v in sorted(spent.items())},
        "load_before": [round(x, 1) for x in load_before],
        "load_after": [round(x, 1) for x in os.getloadavg()],
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
    parser.add_argument("--clients", type=int, default=2, help="simulator processes")
    parser.add_argument("--api-mode", choices=["balancer", "workers"], default="balancer")
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
