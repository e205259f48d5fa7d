"""Where each read model's database is, for the configured store: the read side's own
configuration, kept beside the store's (ops/stores.py) so that projections/ reads none."""

from __future__ import annotations

from collections.abc import Iterable

from ops.settings import Settings
from projections.database import Database, PostgresDatabase, SQLiteDatabase
from projections.models import projection_named


def open_database(settings: Settings, name: str, *, pool_size: int = 4) -> Database:
    """The database holding projection `name`: its own SQLite file, or the PostgreSQL schema.

    On the sqlite profile that is FARMACY_DATA_DIR/projections/<name>.sqlite; on postgres and
    kurrentdb it is FARMACY_POSTGRES_DSN (schema FARMACY_POSTGRES_SCHEMA).
    """
    projection_named(name)
    return open_databases(settings, [name], pool_size=pool_size)[name]


def open_databases(
    settings: Settings, names: Iterable[str], *, pool_size: int
) -> dict[str, Database]:
    """The databases of read models (or trails) `names`, for one process. On SQLite a file
    each; on PostgreSQL they all live in one schema, so they share one pool of `pool_size`
    connections. Close them with `close_databases`."""
    if settings.store == "sqlite":
        return {
            name: SQLiteDatabase(settings.data_dir / "projections" / f"{name}.sqlite")
            for name in names
        }
    if not settings.postgres_dsn:
        raise ValueError("read models need FARMACY_POSTGRES_DSN on this store profile")
    shared = PostgresDatabase(settings.postgres_dsn, settings.postgres_schema, max_size=pool_size)
    return dict.fromkeys(names, shared)
