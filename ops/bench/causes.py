"""What carrying causes costs the projection workers (issue 23): read models rebuilt over the
same events stored without a cause and with one (the metadata every event recorded through
the API now carries), in one run.

Two SQLite stores are filled by the same filler (ops/bench/projections.py, same seed), the
second under a request's cause. Then, alternating between them, --repeats times each: every
event decoded from memory (no I/O), the store's raw read-and-decode (no view) and a rebuild of
each read model named (projections.rebuild, as `farmacy projections rebuild` runs it). The
rates are per second of this process's CPU time, not of the clock (SQLite works in process):
on a machine others load, the clock counts their time too. The best of each is kept; the ratio
caused / plain is printed against the target (>= 0.95: causes cost a worker at most 5 %).

    .venv/bin/python -m ops.bench.causes [--events 30000] [--repeats 3]
                                         [--projections venue_menu,orders]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from application.causes import caused_by
from domain.causes import Cause
from ops.bench.common import parse_list
from ops.bench.projections import CAUSE, Filler, raw_read
from ops.logging import configure_logging
from ops.root import build_write_side, open_database, open_event_store
from ops.settings import Settings
from projections.rebuild import rebuild

TARGET = 0.95


def fill(directory: Path, events: int, cause: Cause | None) -> int:
    side = build_write_side(Settings(store="sqlite", data_dir=directory))
    try:
        with caused_by(cause) if cause is not None else nullcontext():
            added, _ = Filler(side, seed=3).fill(events, "fill")
    finally:
        side.close()
    return added


def rate(directory: Path, what: str) -> float:
    """Events a second: decoding every event held in memory (`what` == "decode": no I/O, so
    the least noisy figure), the raw read ("raw") or the rebuild of read model `what`."""
    settings = Settings(store="sqlite", data_dir=directory)
    store = open_event_store(settings)
    try:
        if what == "decode":
            notifications = store.recorder.select_notifications(None, 10_000_000)
            began = time.process_time()
            for notification in notifications:
                store.mapper.to_domain_event(notification)
            return len(notifications) / (time.process_time() - began)
        began = time.process_time()
        if what == "raw":
            events = raw_read(store)
        else:
            db = open_database(settings, what)
            try:
                events = rebuild(store, db, what).events
            finally:
                db.close()
        return events / (time.process_time() - began)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench.causes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=30_000, help="events in each store")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, the best kept")
    parser.add_argument("--projections", default="venue_menu,orders", help="comma-separated")
    args = parser.parse_args(argv)
    configure_logging("WARNING", "console")
    whats = ["decode", "raw", *parse_list(args.projections)]
    with tempfile.TemporaryDirectory(prefix="farmacy-causes-") as directory:
        plain, caused = Path(directory) / "plain", Path(directory) / "caused"
        filled = [fill(plain, args.events, None), fill(caused, args.events, CAUSE)]
        print(f"filled: {filled[0]:,} events without a cause, {filled[1]:,} with one")
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.repeats):
            for what in whats:
                for name, where in (("plain", plain), ("caused", caused)):
                    measured = rate(where, what)
                    best[what, name] = max(best.get((what, name), 0.0), measured)
    print("\n| read | without a cause, events/CPU s | with one, events/CPU s | ÷ | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for what in whats:
        ratio = best[what, "caused"] / best[what, "plain"]
        verdict = "PASS" if ratio >= TARGET else "MISS"
        print(
            f"| {what} | {best[what, 'plain']:,.0f} | {best[what, 'caused']:,.0f} | "
            f"{ratio:.2f} | >= {TARGET} {verdict} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
