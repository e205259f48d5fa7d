"""Venue menu: per venue and meal, the units a customer can order there, with price and details.

Sharded by venue. Available units are summed over the venue's fridges that sell, each counted
by the domain's `available` on its own local date, exactly as a fridge decides a reservation.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Tx
from projections.freshness import Answer, Reader, ReadState
from projections.reference import MEAL_TABLES, KeepsMeals, meal_details
from projections.stock import STOCK_TABLES, FridgeRef, StockKeeping


class VenueMenu(StockKeeping, KeepsMeals):
    name = "venue_menu"
    tables: ClassVar[dict[str, str]] = {**STOCK_TABLES, **MEAL_TABLES}

    def shard_key(self, fridge: FridgeRef) -> str:
        return fridge.venue_id


@dataclass(frozen=True)
class MenuItem:
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int


def menu_items(tx: Tx, view: VenueMenu, venue_id: str, now: datetime) -> list[MenuItem]:
    """The menu of one venue, in meal-id order; meals with nothing left show 0."""
    stock = availability(tx, view, now, f"f.venue_id = ? AND {SELLS}", (venue_id, *SELLING_PARAMS))
    totals: dict[str, int] = {}
    for (_, meal_id), (_, fresh, held) in stock.items():
        totals[meal_id] = totals.get(meal_id, 0) + available(fresh, held)
    details = meal_details(tx, view, sorted(totals))
    return [
        MenuItem(meal_id, name, price, currency, extra, units)
        for meal_id, units in sorted(totals.items())
        if meal_id in details
        for name, price, currency, extra in [details[meal_id]]
    ]


@dataclass(frozen=True)
class Menu:
    """A venue's menu as the model holds it in one snapshot."""

    timezones: tuple[str, ...]  # of the venue's fridges; none: the model does not know the venue
    items: list[MenuItem]


def venue_menu(tx: Tx, view: VenueMenu, venue_id: str, now: datetime) -> Menu:
    found = tx.rows(
        f"SELECT DISTINCT timezone FROM {view.t['fridges']} WHERE venue_id = ?", (venue_id,)
    )
    timezones = tuple(sorted(str(timezone) for (timezone,) in found))
    return Menu(timezones, menu_items(tx, view, venue_id, now) if timezones else [])


K = TypeVar("K")
K_co = TypeVar("K_co", covariant=True)


class MenuKeeper(Protocol[K_co]):
    """What keeps menus read at a model's exact state (the API's `MenuCache`), as `K`."""

    def kept(self, state: ReadState, venue_id: str, now: datetime) -> K_co | None:
        """The venue's menu kept for exactly `state` and `now`'s local days, if any."""
        ...

    def menu(
        self, state: ReadState, venue_id: str, now: datetime, read: Callable[[], Menu]
    ) -> K_co:
        """The venue's menu at `state`: kept, or `read()` and kept."""
        ...


class VenueMenuQueries:
    """What the API asks the venue menu (GET /venues/{venue_id}/menu), through a `Reader`
    (its `ReadSide`), answered from `keeper` when the model has not moved since."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    async def menu(
        self, venue_id: str, now: datetime, min_position: int | None, keeper: MenuKeeper[K]
    ) -> Answer[K]:
        return await self.reader.read_async(
            VenueMenu,
            lambda tx, view, state: keeper.menu(
                state, venue_id, now, lambda: venue_menu(tx, view, venue_id, now)
            ),
            min_position,
            kept=lambda state: keeper.kept(state, venue_id, now),
        )
