"""The HTTP path's own cost (issue 18 part 5): one API process under menus, then orders,
with py-spy sampling it, so each change to the path is measured before and after
(`--phases orders`: the orders alone, for an order's profile).

Seeds a fresh SQLite store (ops/bench/http.py's world: 20 venues of 10 fridges), starts the
workers and one API process as `farmacy api` runs it, and drives it from this process over
keep-alive connections: GET /venues/{venue}/menu, then POST /orders at random fridges, each
for `--seconds` at `--concurrency` connections. Printed: rate, p50, p99 and the API
process's CPU per request (/proc); then, from py-spy (`record --gil`, the API process only),
the share of its samples spent in each part of the path this issue names.

    .venv/bin/python -m ops.bench.http_path [--concurrency 32] [--seconds 8]
        [--server uvicorn|granian] [--read venue|city|stock] [--store sqlite|postgres]
        [--spy api|workers] [--phases read,orders]

`--read` chooses the read phase's route: a random venue's menu (the default), the city's
menu (`GET /cities/bench-city/menu`) or a random fridge's stock (an operator's token).
`--spy workers` samples the read-model worker (`farmacy worker`, every model in one process)
instead of the API process, and prints its CPU per request too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from interfaces.http.auth import Role, issue_token
from ops.bench.http import (
    MEALS,
    cpu_seconds,
    drive,
    free_port,
    process_tree,
    request,
    seed,
    settings_for,
    start,
    stop,
)

PARTS = {
    # what the profile is asked: a marker of each part of the path, as py-spy names frames
    "request id": ("request_id_of",),
    "token check": ("authenticate_request", "authenticate_token"),
    "request log line": ("structlog/", "ops/logging.py"),
    "guards": ("auth.py:1", "guard ("),
    "a copy of the route handler per guard": ("copy (copy.py",),
    "command lane hand-off": ("concurrent/futures", "run_in_executor", "commands.py"),
    "telemetry middleware (all)": ("telemetry.py",),
}


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    """Total samples and, per part, the share of samples whose stack holds its marker."""
    total = 0
    found = dict.fromkeys(PARTS, 0)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for part, markers in PARTS.items():
            if any(marker in stack for marker in markers):
                found[part] += int(count)
    return total, {part: n / total if total else 0.0 for part, n in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--server", default=None, help="FARMACY_SERVER for the API process")
    parser.add_argument("--read", choices=("venue", "city", "stock"), default="venue")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--spy", choices=("api", "workers"), default="api")
    parser.add_argument(
        "--phases",
        default="read,orders",
        help="which phases to drive and profile, of read,orders (orders alone: an order's profile)",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    if not phases or not phases <= {"read", "orders"}:
        parser.error(f"--phases takes read, orders or both, not {args.phases!r}")
    settings, drop = settings_for(args.store)
    venues, fridges = seed(settings)
    port = free_port()
    if args.server:
        os.environ["FARMACY_SERVER"] = args.server  # the API process inherits it
    workers, apis = start(settings, [port])
    customers = [issue_token(settings.secret, Role.CUSTOMER, f"c-{n}") for n in range(32)]
    operator = issue_token(settings.secret, Role.OPERATOR, "bench")

    def read() -> bytes:
        if args.read == "city":
            return request("GET", "/cities/bench-city/menu", random.choice(customers))
        if args.read == "stock":
            return request("GET", f"/fridges/{random.choice(fridges)}/stock", operator)
        return request("GET", f"/venues/{random.choice(venues)}/menu", random.choice(customers))

    spied = apis[0] if args.spy == "api" else workers
    raw = Path(tempfile.mkdtemp(prefix="farmacy-path-")) / "api.txt"
    spy = subprocess.Popen(
        [
            *(str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "--rate", "200"),
            *("--format", "raw", "-o", str(raw), "--pid", str(spied.pid)),
            *("--subprocesses", "--duration", str(int(args.seconds * len(phases) + 2))),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches before the load starts
    try:
        rows = []
        worker_ms: list[float] = []
        for phase, kind, make in (
            ("read", args.read, read),
            (
                "orders",
                "orders",
                lambda: request(
                    "POST",
                    "/orders",
                    random.choice(customers),
                    json.dumps(
                        {
                            "fridge_id": random.choice(fridges),
                            "lines": [{"meal_id": MEALS[0], "quantity": 1}],
                        }
                    ).encode(),
                    key=f"k-{random.getrandbits(64):x}",
                ),
            ),
        ):
            if phase not in phases:
                continue
            serving = process_tree(apis[0].pid)  # granian: a supervisor and its worker
            before, behind = cpu_seconds(*serving), cpu_seconds(workers.pid)
            result = asyncio.run(drive([(port, make)], args.concurrency, args.seconds, kind))
            result.cpu_seconds = cpu_seconds(*serving) - before
            rows.append(result)
            answered = max(len(result.latencies), 1)
            worker_ms.append(1000 * (cpu_seconds(workers.pid) - behind) / answered)
        spy.wait(timeout=args.seconds * len(phases) + 60)
    finally:
        stop([*apis, workers])
        drop()
    print(f"server: {args.server or 'uvicorn (default)'}, {args.concurrency} connections")
    for r, worker in zip(rows, worker_ms, strict=True):
        print(
            f"{r.kind:7} {r.rate:8.0f}/s  p50 {r.percentile(0.5):6.1f} ms  "
            f"p99 {r.percentile(0.99):6.1f} ms  API CPU {r.cpu_ms_per_answer:5.2f} ms/request  "
            f"worker CPU {worker:5.2f} ms/request  {dict(r.statuses)}"
        )
    total, found = shares(raw)
    print(f"py-spy --gil, the {args.spy} process: {total} samples over {args.phases}, raw: {raw}")
    for part, share in found.items():
        print(f"  {part:28} {share:6.1%}")


if __name__ == "__main__":
    main()
