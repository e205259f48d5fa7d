"""Appends on PostgreSQL (issue 9): the library's locked recorder against the unlocked one.

In one run, on a throwaway database per recorder and measurement:

- raw appends: each caller saves a fresh `Meal` (one event, its own stream) through the
  event store, at each --threads count, with eventsourcing's `PostgresApplicationRecorder`
  (LOCK TABLE ... IN EXCLUSIVE MODE per append) and with `ParallelAppendRecorder`
  (ops/postgres_events.py: no lock, readers stop at the safe head), back to back. The
  connection pool is sized to the thread count for both. Target: unlocked / locked >= 3 at
  32 threads.
- spread place: `side.ordering.place` over 1,000 fridges (callers pick one at random) with
  each recorder, as in ops/bench/hot_fridge.py.
- lag: ops/bench/projections.py's lag run (a `venue_menu` worker process following orders
  placed at --order-rate per second), with the unlocked recorder and, as the baseline of the
  same run, the locked one (chosen for the bench and its worker alike through
  FARMACY_APPLICATION_RECORDER_TOPIC, which the library reads before the plain key).
  Target: p99 < 250 ms with the unlocked recorder.

Absolute figures drift on a shared machine; the ratios from the same run are the point.

    .venv/bin/python -m ops.bench.appends [--threads 8,32] [--seconds 4] [--lag-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic

from domain.catalogue import Meal
from ops.bench.common import ADMIN_DSN, bench_database, parse_list
from ops.bench.hot_fridge import (
    SPREAD_FRIDGES,
    SPREAD_STOCK,
    Bench,
    Measured,
    Op,
    new_fridge,
    place_op,
    set_up_catalogue,
)
from ops.bench.projections import LagResult, measure_lag
from ops.logging import configure_logging
from ops.postgres_events import RECORDER_TOPIC
from ops.root import WriteSide, build_write_side
from ops.settings import Settings

TARGET_THREADS = 32
TARGET_RATIO = 3.0
TARGET_LAG_P99_MS = 250.0

RECORDER_OVERRIDE = "FARMACY_APPLICATION_RECORDER_TOPIC"

RECORDERS = {
    "locked": get_topic(PostgresApplicationRecorder),
    "unlocked": RECORDER_TOPIC,
}


@contextmanager
def write_side(admin_dsn: str, recorder: str, pool: int) -> Iterator[WriteSide]:
    """A write side on a database of its own with the named recorder and `pool` connections."""
    with bench_database(admin_dsn) as dsn:
        settings = Settings(store="postgres", postgres_dsn=dsn)
        env = {
            "APPLICATION_RECORDER_TOPIC": RECORDERS[recorder],
            "POSTGRES_POOL_SIZE": str(pool),
            "POSTGRES_MAX_OVERFLOW": "0",
        }
        side = build_write_side(settings, extra_env=env)
        try:
            set_up_catalogue(side)
            yield side
        finally:
            side.close()


def raw_append_op(side: WriteSide) -> Op:
    """One fresh aggregate, one event, one append: its own stream, so no two ever conflict."""
    run = uuid.uuid4().hex[:8]

    def op(index: int, n: int) -> None:
        side.store.save(Meal.register(f"raw-{run}-{n}", "Bench soup", "6.50", "EUR"))

    return op


def bench_appends(bench: Bench, admin_dsn: str, threads: list[int]) -> None:
    for count in threads:
        for recorder in RECORDERS:
            with write_side(admin_dsn, recorder, count) as side:
                bench.measure(recorder, "raw append", count, raw_append_op(side))


def bench_spread(bench: Bench, admin_dsn: str, callers: int) -> None:
    for recorder in RECORDERS:
        with write_side(admin_dsn, recorder, callers) as side:
            run = uuid.uuid4().hex[:8]
            fridges = [f"spread-{k:04d}-{run}" for k in range(SPREAD_FRIDGES)]
            began = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda f: new_fridge(side, f, SPREAD_STOCK), fridges))
            print(
                f"  {recorder:8} {len(fridges)} fridges set up in "
                f"{time.perf_counter() - began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            op = place_op(side, f"spread-{run}", fridges)
            bench.measure(recorder, "spread place", callers, op, side)


def bench_lag(admin_dsn: str, seconds: float, rate: float) -> dict[str, LagResult]:
    lags: dict[str, LagResult] = {}
    for recorder, topic in RECORDERS.items():
        os.environ[RECORDER_OVERRIDE] = topic  # this process's store and its worker's
        try:
            with bench_database(admin_dsn) as dsn:
                settings = Settings(store="postgres", postgres_dsn=dsn)
                print(f"  {recorder:8} lag:", file=sys.stderr, flush=True)
                lags[recorder] = measure_lag("postgres", settings, seconds, rate, 16, 8)
        finally:
            del os.environ[RECORDER_OVERRIDE]
    return lags


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


def ratio(bench: Bench, path: str, count: int) -> float | None:
    locked = bench.find("locked", path, count)
    unlocked = bench.find("unlocked", path, count)
    if locked is None or unlocked is None or not locked.rate:
        return None
    return unlocked.rate / locked.rate


def row(result: Measured | None) -> str:
    if result is None:
        return "- | - | -"
    return f"{fmt(result.rate)} | {fmt(result.p50, 2)} | {fmt(result.p99, 2)}"


def report(bench: Bench, threads: list[int], callers: int, lags: dict[str, LagResult]) -> None:
    print()
    print("Appends to distinct streams (one event each), locked vs unlocked recorder, same run")
    print()
    print("| path | threads | locked/s | p50 ms | p99 ms | unlocked/s | p50 ms | p99 ms | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path, counts in (("raw append", threads), ("spread place", [callers])):
        for count in counts:
            locked = bench.find("locked", path, count)
            unlocked = bench.find("unlocked", path, count)
            print(
                f"| {path} | {count} | {row(locked)} | {row(unlocked)} "
                f"| {fmt(ratio(bench, path, count), 2)} |"
            )
    print()
    measured = ratio(bench, "raw append", TARGET_THREADS)
    if measured is None:
        print(f"Target: not measured (needs {TARGET_THREADS} in --threads)")
    else:
        verdict = "PASS" if measured >= TARGET_RATIO else "MISS"
        print(
            f"Target at {TARGET_THREADS} threads: unlocked / locked = {measured:.2f} "
            f">= {TARGET_RATIO:.1f} {verdict}"
        )
    for recorder, lag in lags.items():
        p99 = lag.percentile(0.99)
        verdict = "PASS" if p99 < TARGET_LAG_P99_MS else "MISS"
        print(
            f"Lag, {recorder} recorder (venue_menu worker) over {lag.placed:,} orders at "
            f"{lag.rate:.1f}/s (asked {lag.asked:.0f}/s): p50 {lag.percentile(0.5):.1f} ms, "
            f"p99 {p99:.1f} ms < {TARGET_LAG_P99_MS:.0f} ms {verdict} "
            f"({lag.errors} errors, {lag.unreached} unreached)"
        )
    errors = [r for r in bench.results if r.errors]
    for result in errors:
        print(f"errors in {result.store} {result.path} x{result.callers}: {result.first_error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench.appends", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--threads", default="8,32", help="comma-separated thread counts")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each measurement")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured run before each")
    parser.add_argument("--max-ops", type=int, default=200_000, help="cap on ops per measurement")
    parser.add_argument(
        "--spread-callers", type=int, default=TARGET_THREADS, help="callers for 1,000 fridges"
    )
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="0 skips the lag run")
    parser.add_argument("--order-rate", type=float, default=300.0, help="orders per second")
    parser.add_argument(
        "--postgres-dsn", default=ADMIN_DSN, help="a server where databases may be created"
    )
    args = parser.parse_args(argv)
    threads = [int(count) for count in parse_list(args.threads)]
    if not threads or min(threads) < 1:
        parser.error("--threads: positive thread counts, e.g. 8,32")

    configure_logging("WARNING", "console")
    bench = Bench(args.seconds, args.warmup, args.max_ops)
    began = time.perf_counter()
    print(f"appends: threads {threads}, {args.seconds:g} s each", file=sys.stderr)
    bench_appends(bench, args.postgres_dsn, threads)
    bench_spread(bench, args.postgres_dsn, args.spread_callers)
    lags = {}
    if args.lag_seconds > 0:
        lags = bench_lag(args.postgres_dsn, args.lag_seconds, args.order_rate)
    report(bench, threads, args.spread_callers, lags)
    print(f"\n(took {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
