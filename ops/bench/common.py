"""What the benchmarks share: a throwaway PostgreSQL database, and argument parsing."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import make_conninfo


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
