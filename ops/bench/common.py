"""What the benchmarks share: the PostgreSQL server, a throwaway database on it, and argument
parsing."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date

import psycopg
from psycopg.conninfo import make_conninfo

from domain.values import MOST_UNITS
from ops.root import WriteSide

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The server every machine here has (user postgres, trust): benchmarks make their databases
and schemas on it unless told another."""


@contextmanager
def bench_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database of this run's own, dropped at the end whatever happens. Its DSN."""
    name = f"farmacy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        for attempt in range(10):  # a busy server ("too many clients") must not keep it
            try:
                with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                if attempt == 9:
                    print(f"could not drop database {name}: drop it by hand", file=sys.stderr)
                    raise
                time.sleep(3)


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def stock_up(
    side: WriteSide, fridge_id: str, units: Mapping[str, int], best_before: date, tag: str
) -> None:
    """Deliver `units` per meal to a fridge, in as many deliveries as the rule allows: one
    delivery brings at most MOST_UNITS units (what one count may report of a meal)."""
    left = {meal: n for meal, n in units.items() if n > 0}
    number = 0
    while left:
        lines: dict[str, int] = {}
        room = MOST_UNITS
        for meal in sorted(left):
            take = min(left[meal], room)
            if take:
                lines[meal], room = take, room - take
        for meal, take in lines.items():
            left[meal] -= take
            if not left[meal]:
                del left[meal]
        side.stock.deliver(fridge_id, f"{tag}-{number}", lines, best_before)
        number += 1
