"""Configuration comes from the environment; `farmacy --help` lists every setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
}

STORES = ("sqlite", "postgres", "kurrentdb")


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

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
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
        )
        if store == "postgres" and not settings.postgres_dsn:
            raise SettingsError("FARMACY_STORE=postgres needs FARMACY_POSTGRES_DSN")
        if store == "kurrentdb" and not settings.kurrentdb_uri:
            raise SettingsError("FARMACY_STORE=kurrentdb needs KURRENTDB_URI")
        return settings
