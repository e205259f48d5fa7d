"""Turn Farmacy's settings into the environment the eventsourcing library reads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ops.connections import POOL_TIMEOUT_SECONDS
from ops.postgres_events import RECORDER_TOPIC
from ops.settings import Settings, SettingsError


def redacted(dsn: str) -> str:
    """A DSN safe to print: no password."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def postgres_env(dsn: str, schema: str = "") -> dict[str, str]:
    try:
        parts = conninfo_to_dict(dsn)
    except Exception as error:
        raise SettingsError(f"FARMACY_POSTGRES_DSN={redacted(dsn)} is not a DSN: {error}") from None
    env = {
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(parts.get("port") or "5432"),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        # One connection, more only for concurrent callers (a one-off command, a benchmark);
        # long-running processes size theirs from what they run (ops/connections.py).
        # eventsourcing hands the "connect" timeout to the pool as its wait for a connection.
        "POSTGRES_CONNECT_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "19",
        "POSTGRES_LOCK_TIMEOUT": "5",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def event_store_env(settings: Settings) -> dict[str, str]:
    """The event store's configuration for the chosen profile."""
    if settings.store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if settings.store == "postgres":
        assert settings.postgres_dsn is not None
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            # Appends without the store-wide table lock; readers stop at the safe head.
            "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
            **postgres_env(settings.postgres_dsn, settings.postgres_schema),
        }
    assert settings.kurrentdb_uri is not None
    return {
        "PERSISTENCE_MODULE": "eventsourcing_kurrentdb",
        "KURRENTDB_URI": settings.kurrentdb_uri,
    }


def describe(settings: Settings) -> str:
    """Which setting points at the store, for one-line error messages."""
    if settings.store == "postgres":
        return f"PostgreSQL at FARMACY_POSTGRES_DSN={redacted(settings.postgres_dsn or '')}"
    if settings.store == "kurrentdb":
        return f"KurrentDB at KURRENTDB_URI={redacted(settings.kurrentdb_uri or '')}"
    return f"SQLite under FARMACY_DATA_DIR={settings.data_dir}"


# Any constant will do; it only has to be the same for every Farmacy process.
SCHEMA_LOCK_KEY = 0x46_61_72_6D_61_63_79  # "Farmacy"


@contextmanager
def schema_creation_lock(settings: Settings) -> Iterator[None]:
    """Let one process at a time create tables: PostgreSQL's catalog does not take concurrent
    CREATE ... IF NOT EXISTS of the same objects ("tuple concurrently updated")."""
    if settings.store != "postgres" or not settings.postgres_dsn:
        yield
        return
    with psycopg.connect(settings.postgres_dsn, connect_timeout=5, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
