"""Configuration comes from the environment; `farmacy --help` lists every setting."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

SETTINGS_HELP = {
    "FARMACY_STORE": "sqlite (default, embedded), postgres, or kurrentdb",
    "FARMACY_DATA_DIR": "where SQLite files live (default ./var)",
    "FARMACY_POSTGRES_DSN": "PostgreSQL for events (postgres) and read models (postgres, "
    "kurrentdb), e.g. postgresql://postgres@127.0.0.1:5432/farmacy",
    "FARMACY_POSTGRES_SCHEMA": "PostgreSQL schema to use (default public)",
    "KURRENTDB_URI": "KurrentDB/EventStoreDB, e.g. kurrentdb://127.0.0.1:2113?tls=false",
    "FARMACY_SECRET": "signs bearer tokens and verifies payment webhooks",
    "FARMACY_LOG_FORMAT": "console or json (default: console on a terminal, else json)",
    "FARMACY_COMMAND_CONCURRENCY": "commands one API process runs at once (default by store: "
    "sqlite 2, postgres 4, kurrentdb 16)",
    "FARMACY_COMMAND_QUEUE": "commands that may wait for a turn before the next gets 503 "
    "(default 256)",
}

STORES = ("sqlite", "postgres", "kurrentdb")

# How many commands one API process runs against each store at once (interfaces/http/
# commands.py). SQLite and eventsourcing's PostgreSQL recorder each take one write lock per
# append, so past a few callers more threads only hold that lock longer; measured in
# docs/benchmarks.md. KurrentDB takes appends to different streams in parallel over gRPC:
# 16 is a starting point, not a measurement (no server here).
COMMAND_CONCURRENCY = {"sqlite": 2, "postgres": 4, "kurrentdb": 16}


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    store: str = "sqlite"
    data_dir: Path = Path("var")
    postgres_dsn: str | None = None
    postgres_schema: str = ""
    kurrentdb_uri: str | None = None
    secret: str = "farmacy-local-development-secret"  # noqa: S105 - overridden in any deployment
    command_concurrency: int | None = None  # None: COMMAND_CONCURRENCY[store]
    command_queue: int = 256

    @property
    def command_lane_size(self) -> int:
        return self.command_concurrency or COMMAND_CONCURRENCY[self.store]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        store = env.get("FARMACY_STORE", "sqlite").strip().lower()
        if store not in STORES:
            raise SettingsError(f"FARMACY_STORE={store!r}: choose one of {', '.join(STORES)}")
        settings = cls(
            store=store,
            data_dir=Path(env.get("FARMACY_DATA_DIR", "var")),
            postgres_dsn=env.get("FARMACY_POSTGRES_DSN") or None,
            postgres_schema=env.get("FARMACY_POSTGRES_SCHEMA", ""),
            kurrentdb_uri=env.get("KURRENTDB_URI") or None,
            secret=env.get("FARMACY_SECRET") or cls.secret,
            command_concurrency=_whole(env, "FARMACY_COMMAND_CONCURRENCY", minimum=1),
        )
        queue = _whole(env, "FARMACY_COMMAND_QUEUE", minimum=0)
        if queue is not None:
            settings = replace(settings, command_queue=queue)
        if store == "postgres" and not settings.postgres_dsn:
            raise SettingsError("FARMACY_STORE=postgres needs FARMACY_POSTGRES_DSN")
        if store == "kurrentdb" and not settings.kurrentdb_uri:
            raise SettingsError("FARMACY_STORE=kurrentdb needs KURRENTDB_URI")
        return settings

    def as_env(self) -> dict[str, str]:
        """These settings as the environment `from_env` reads: for a child process (a
        worker, an API server) that must see the same stores as its parent."""
        env = {
            "FARMACY_STORE": self.store,
            "FARMACY_DATA_DIR": str(self.data_dir),
            "FARMACY_POSTGRES_DSN": self.postgres_dsn or "",
            "FARMACY_POSTGRES_SCHEMA": self.postgres_schema,
            "KURRENTDB_URI": self.kurrentdb_uri or "",
            "FARMACY_SECRET": self.secret,
            "FARMACY_COMMAND_QUEUE": str(self.command_queue),
        }
        if self.command_concurrency is not None:
            env["FARMACY_COMMAND_CONCURRENCY"] = str(self.command_concurrency)
        return env


def _whole(env: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    """The whole number in `name`, or None when it is not set."""
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise SettingsError(f"{name}={text!r}: a whole number of at least {minimum}")
    return value
