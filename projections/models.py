"""The read models by name. Where each one's database is, the composition root decides
(ops/root.py)."""

from __future__ import annotations

from collections.abc import Mapping

from projections.city_catalogue import CityCatalogue
from projections.database import Database
from projections.feed import Feed
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
PROJECTIONS[Feed.name] = Feed  # the integration events (docs/feed.md)


class UnknownProjection(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"no projection named {name!r}; choose from {', '.join(PROJECTIONS)}")


def projection_named(name: str) -> type[Projection]:
    try:
        return PROJECTIONS[name]
    except KeyError:
        raise UnknownProjection(name) from None


def close_databases(dbs: Mapping[str, Database]) -> None:
    """Close each database once, however many names share it."""
    for db in {id(db): db for db in dbs.values()}.values():
        db.close()
