"""The read models by name, and where each one's database is for the configured store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ops.settings import Settings
from projections.city_catalogue import CityCatalogue
from projections.database import Database, PostgresDatabase, SQLiteDatabase
from projections.fridge_stock import FridgeStock
from projections.orders import Orders
from projections.projection import Projection
from projections.refill_plan import RefillPlan
from projections.reservations import Reservations
from projections.venue_menu import VenueMenu

PROJECTIONS: dict[str, type[Projection]] = {
    projection.name: projection
    for projection in (VenueMenu, FridgeStock, CityCatalogue, Orders, RefillPlan, Reservations)
}


class UnknownProjection(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"no projection named {name!r}; choose from {', '.join(PROJECTIONS)}")


def projection_named(name: str) -> type[Projection]:
    try:
        return PROJECTIONS[name]
    except KeyError:
        raise UnknownProjection(name) from None


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


def close_databases(dbs: Mapping[str, Database]) -> None:
    """Close each database once, however many names share it."""
    for db in {id(db): db for db in dbs.values()}.values():
        db.close()
