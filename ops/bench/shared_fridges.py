"""Shared fridges (issue 8): what two processes writing the same fridges cost, against one.

Two API processes behind a load balancer that does not hash on the fridge both write every
fridge: each keeps its own copy, catches up with what the other appended, and now and then
loses an append to it. This measures that cost without HTTP, on PostgreSQL:

- one process: N callers (threads) place one-unit orders at random fridges of F;
- two processes: N/2 callers each, the same fridges, at the same time.

Each process reports its orders/s, the CPU it spent per order (user + system, from
`time.process_time`), its writer's batches, lost appends (conflicts) and turns. The ratio
printed is the two processes' CPU per order against the one process's, measured in the
same run on the same database: 1.0 would mean sharing fridges costs nothing.

    .venv/bin/python -m ops.bench.shared_fridges [--fridges 100] [--callers 32] [--seconds 8]

With `--fridges 1` it is the hot fridge shared by two processes (where turns engage).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

from ops.bench.common import ADMIN_DSN, bench_database, stock_up
from ops.logging import configure_logging
from ops.root import build_write_side
from ops.settings import Settings

MEAL = "bench-meal"
WARMUP = 2.0


def fridge_ids(count: int) -> list[str]:
    return [f"shared-{n}" for n in range(count)]


def prepare(dsn: str, fridges: int, units: int) -> None:
    side = build_write_side(Settings(store="postgres", postgres_dsn=dsn))
    try:
        side.catalogue.register_city("bench-city", "Bench City", "Europe/Berlin")
        side.catalogue.register_meal(MEAL, "Bench meal", "7.50", "EUR")
        side.catalogue.register_venue("bench-venue", "bench-city", "Bench venue")
        best_before = (side.clock() + timedelta(days=3)).date()
        for fridge in fridge_ids(fridges):
            side.catalogue.install_fridge(fridge, "bench-venue")
            stock_up(side, fridge, {MEAL: units}, best_before, "bench-delivery")
    finally:
        side.close()


def one_process(dsn: str, fridges: int, callers: int, start: float, seconds: float) -> None:
    """Run in a process of its own: place orders from `start` (after a warm-up) for
    `seconds`, and print what it measured as one JSON line."""
    # Log lines (a lost append is one) go to stderr, as a server's do; stdout is kept for the
    # one JSON line, read only when every process is done: a full pipe would stall this one.
    configure_logging(fmt="json")
    side = build_write_side(Settings(store="postgres", postgres_dsn=dsn))
    ids = fridge_ids(fridges)
    placed: list[int] = []
    failures: list[str] = []

    def caller(until: float, counted: bool) -> None:
        done = 0
        while time.time() < until:
            try:
                side.ordering.place(
                    f"c-{random.randrange(64)}", uuid.uuid4().hex, random.choice(ids), {MEAL: 1}
                )
            except Exception as failure:  # a benchmark reports failures, it does not hide them
                failures.append(type(failure).__name__)
                continue
            done += 1
        if counted:
            placed.append(done)

    def run(until: float, counted: bool) -> None:
        threads = [threading.Thread(target=caller, args=(until, counted)) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    run(start, counted=False)  # warm-up: loads every fridge, fills the price list
    stats = side.writer.stats
    before = (stats.batches, stats.conflicts, stats.turns, len(failures))
    cpu, began = time.process_time(), time.time()
    run(start + seconds, counted=True)
    elapsed, cpu = time.time() - began, time.process_time() - cpu
    orders = sum(placed)
    print(
        json.dumps(
            {
                "orders": orders,
                "rate": orders / elapsed,
                "cpu_ms": cpu * 1000 / orders if orders else float("nan"),
                "batches": stats.batches - before[0],
                "conflicts": stats.conflicts - before[1],
                "turns": stats.turns - before[2],
                "failures": len(failures) - before[3],
            }
        ),
        flush=True,
    )
    side.close()


def measure(dsn: str, processes: int, args: argparse.Namespace) -> list[dict[str, float]]:
    start = time.time() + WARMUP + 4  # time for every process to start and connect
    children = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "ops.bench.shared_fridges", "--child", dsn),
                *("--fridges", str(args.fridges), "--callers", str(args.callers // processes)),
                *("--seconds", str(args.seconds), "--start", str(start)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # failures are counted in the JSON line
            text=True,
        )
        for _ in range(processes)
    ]
    found = []
    for child in children:
        out, _ = child.communicate(timeout=args.seconds + 120)
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fridges", type=int, default=100)
    parser.add_argument("--callers", type=int, default=32, help="in all, split between processes")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--postgres-dsn", default=ADMIN_DSN)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_process(args.child, args.fridges, args.callers, args.start, args.seconds)
        return
    # Enough units that nothing sells out: a generous rate times both runs, per fridge.
    units = int(4_000 * (2 * args.seconds + 4 * WARMUP) / args.fridges) + 1_000
    print(f"load average {os.getloadavg()}")
    rows = {}
    for processes in (1, 2):
        with bench_database(args.postgres_dsn) as dsn:
            prepare(dsn, args.fridges, units)
            rows[processes] = measure(dsn, processes, args)
        for index, row in enumerate(rows[processes]):
            print(
                f"  {processes} process(es), #{index}: {row['rate']:7.0f} orders/s, "
                f"CPU {row['cpu_ms']:.3f} ms/order, batches {row['batches']}, "
                f"lost appends {row['conflicts']}, turns {row['turns']}, "
                f"failures {row['failures']}",
                flush=True,
            )
    alone = rows[1][0]
    shared_rate = sum(row["rate"] for row in rows[2])
    shared_cpu = sum(row["cpu_ms"] * row["orders"] for row in rows[2]) / sum(
        row["orders"] for row in rows[2]
    )
    print(
        f"\n{args.fridges} fridges, {args.callers} callers: one process {alone['rate']:,.0f}/s at "
        f"{alone['cpu_ms']:.3f} ms CPU an order; two sharing them {shared_rate:,.0f}/s at "
        f"{shared_cpu:.3f} ms: CPU per order x{shared_cpu / alone['cpu_ms']:.2f}, "
        f"rate x{shared_rate / alone['rate']:.2f}; load average now {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
