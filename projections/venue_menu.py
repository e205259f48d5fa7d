"""Venue menu: per venue and meal, the units a customer can order there, with price and details.

Sharded by venue. Available units are summed over the venue's fridges that sell, each counted
by the domain's `available` on its own local date, exactly as a fridge decides a reservation.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar, Protocol, TypeVar

from domain.catalogue import Meal
from domain.fridge import FridgeStatus
from domain.shelf import available
from projections.availability import SELLING_PARAMS, SELLS, availability
from projections.database import Database, Tx, marks
from projections.freshness import Answer, Reader, ReadsInFlight, ReadState, attempt, stamped
from projections.reference import MEAL_TABLES, KeepsMeals, meal_details
from projections.stale import stale_fridges
from projections.stock import FridgeRef, StockKeeping
from projections.versions import (
    EVERY,
    Versioned,
    VersionsSeen,
    version_tables,
    versions_of,
)

MEAL_EVENTS = (Meal.Registered, Meal.Repriced)
"""What changes every venue's menu (the meals' names, prices and details)."""


class VenueMenu(Versioned, StockKeeping, KeepsMeals):
    name = "venue_menu"
    tables: ClassVar[dict[str, str]] = {
        **StockKeeping.tables,
        **MEAL_TABLES,
        **version_tables("venue_id"),
    }
    version_key = "venue_id"

    def shard_key(self, fridge: FridgeRef) -> str:
        return fridge.venue_id

    def changes(self, event: object, tx: Tx) -> str | None:
        """A meal's change is every venue's; a fridge's, its venue's."""
        if isinstance(event, MEAL_EVENTS):
            return EVERY
        fridge = self.stock.fridge(tx, str(getattr(event, "originator_id", "")))
        return None if fridge is None else fridge.venue_id


@dataclass(frozen=True)
class MenuItem:
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int
    fridges: tuple[tuple[str, int], ...] = ()
    """The venue's fridges that hold some of it to order, by id, and how many each."""


def menu_items(
    tx: Tx, view: VenueMenu, venue_of: Mapping[str, str], now: datetime
) -> dict[str, list[MenuItem]]:
    """The menus of the venues of these fridges (fridge id -> venue id, every selling fridge of
    each venue among them), each in meal-id order; meals with nothing left show 0."""
    venue_ids = sorted(set(venue_of.values()))
    if not venue_ids:  # no fridge of theirs is left but retired ones
        return {}
    where = f"f.venue_id IN ({marks(venue_ids)}) AND {SELLS}"
    stock = availability(tx, view, now, where, (*venue_ids, *SELLING_PARAMS))
    totals: dict[str, dict[str, int]] = {}
    held_in: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for (fridge_id, meal_id), (_, fresh, held) in sorted(stock.items()):
        venue_id, units = venue_of[fridge_id], available(fresh, held)
        venue = totals.setdefault(venue_id, {})
        venue[meal_id] = venue.get(meal_id, 0) + units
        if units:
            held_in.setdefault((venue_id, meal_id), []).append((fridge_id, units))
    details = meal_details(tx, view, sorted({meal for venue in totals.values() for meal in venue}))
    return {
        venue_id: [
            MenuItem(
                meal_id,
                name,
                price,
                currency,
                extra,
                units,
                tuple(held_in.get((venue_id, meal_id), ())),
            )
            for meal_id, units in sorted(venue.items())
            if meal_id in details
            for name, price, currency, extra in [details[meal_id]]
        ]
        for venue_id, venue in totals.items()
    }


@dataclass(frozen=True)
class VenueFridge:
    """One of the venue's fridges (retired ones are gone) and whether a customer can use it."""

    fridge_id: str
    status: str  # active or offline (`FridgeStatus`)
    stale_since: str | None = None  # marked stale by the fridge cloud's poller, since when

    @property
    def state(self) -> str:
        """active, offline, or stale: active, but no count from it for too long."""
        if self.stale_since is not None and self.status == FridgeStatus.ACTIVE.value:
            return "stale"
        return self.status


def venue_fridges(
    tx: Tx, view: VenueMenu, venue_ids: Sequence[str]
) -> dict[str, tuple[VenueFridge, ...]]:
    """Each venue's fridges that are not retired, by id."""
    found: dict[str, list[VenueFridge]] = {}
    for venue_id, fridge_id, status, since in tx.rows(
        f"SELECT f.venue_id, f.fridge_id, f.status, s.since FROM {view.t['fridges']} f "
        f"LEFT JOIN {view.t['stale']} s ON s.stream = f.stream "
        f"WHERE f.venue_id IN ({marks(venue_ids)}) AND f.status <> ? ORDER BY f.fridge_id",
        (*venue_ids, FridgeStatus.RETIRED.value),
    ):
        found.setdefault(str(venue_id), []).append(
            VenueFridge(str(fridge_id), str(status), None if since is None else str(since))
        )
    return {venue_id: tuple(fridges) for venue_id, fridges in found.items()}


@dataclass(frozen=True)
class Menu:
    """A venue's menu as the model holds it in one snapshot."""

    timezones: tuple[str, ...]  # of the venue's fridges; none: the model does not know the venue
    items: list[MenuItem]
    stale: tuple[str, ...] = ()  # the venue's fridges marked stale: their counts may be old
    version: int = 0  # the venue's version in the same snapshot (projections/versions.py)
    fridges: tuple[VenueFridge, ...] = ()  # the venue's fridges and their state


def venue_menus(
    tx: Tx, view: VenueMenu, venue_ids: Sequence[str], now: datetime
) -> dict[str, Menu]:
    """The menus of these venues in one snapshot, a statement per kind of row for all of them
    (an API process refreshes the venues its poll saw change this way, `VenueMenuQueries`)."""
    timezones: dict[str, list[str]] = {}
    for venue_id, timezone in tx.rows(
        f"SELECT DISTINCT venue_id, timezone FROM {view.t['fridges']} "
        f"WHERE venue_id IN ({marks(venue_ids)})",
        venue_ids,
    ):
        timezones.setdefault(str(venue_id), []).append(str(timezone))
    known = sorted(timezones)
    menus = {venue_id: Menu((), []) for venue_id in venue_ids if venue_id not in timezones}
    if not known:
        return menus
    stale = stale_fridges(tx, view.t, known)
    versions = versions_of(tx, view.t, "venue_id", known)
    fridges = venue_fridges(tx, view, known)
    venue_of = {each.fridge_id: venue for venue, theirs in fridges.items() for each in theirs}
    items = menu_items(tx, view, venue_of, now)
    for venue_id in known:
        menus[venue_id] = Menu(
            tuple(sorted(timezones[venue_id])),
            items.get(venue_id, []),
            tuple(stale.get(venue_id, ())),
            versions[venue_id],
            fridges.get(venue_id, ()),
        )
    return menus


def venue_menu(tx: Tx, view: VenueMenu, venue_id: str, now: datetime) -> Menu:
    return venue_menus(tx, view, [venue_id], now)[venue_id]


ASKED_SECONDS = 10.0
"""A venue's menu asked for within this long is kept current by the poll (`keep_current`)."""
KEPT_CURRENT_AT_ONCE = 64
"""At most this many venues read again after one poll; others wait for their next request."""

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

    def current(
        self, seen: VersionsSeen, venue_id: str, now: datetime
    ) -> tuple[K_co, ReadState] | None:
        """The venue's menu kept at the version `seen` has for it (and `now`'s local days),
        with a state of the model that showed exactly it, if any."""
        ...

    def asked(self, within: float) -> list[tuple[str, int, int]]:
        """The venues whose kept menu was asked for in the last `within` seconds, the most
        recently asked first: (venue id, the version and the generation it was read at)."""
        ...


class VenueMenuQueries:
    """What the API asks the venue menu (GET /venues/{venue_id}/menu), through a `Reader`
    (its `ReadSide`), answered from `keeper` when nothing the menu shows has moved since.

    With `seen` (the API's last poll of the venues' versions, `VersionWatch`), a menu
    whose venue's version has not moved is answered from memory, without the database, at the
    position of that poll (the model was at least there). A `min_position` beyond that poll
    reads the database, waiting (bounded) for the model to reach it."""

    def __init__(
        self, reader: Reader, seen: Callable[[], VersionsSeen | None] | None = None
    ) -> None:
        self.reader = reader
        self.seen = seen
        self.in_flight = ReadsInFlight()

    async def menu(
        self, venue_id: str, now: datetime, min_position: int | None, keeper: MenuKeeper[K]
    ) -> Answer[K]:
        """From memory while nothing the menu shows has moved since the last poll; else from
        the database, one read of the venue at a time (`ReadsInFlight`)."""
        seen = self.seen() if self.seen is not None else None
        if seen is not None and (min_position is None or seen.state.position >= min_position):
            found = keeper.current(seen, venue_id, now)
            if found is not None:
                return stamped(*found)

        def again() -> Answer[K] | None:
            latest = (self.seen() if self.seen is not None else None) or seen
            found = None if latest is None else keeper.current(latest, venue_id, now)
            return None if found is None else stamped(*found)

        return await self.in_flight.read(
            venue_id,
            lambda: self._read(venue_id, now, min_position, keeper),
            again,
            alone=seen is None or min_position is not None,
        )

    def keep_current(
        self, db: Database, seen: VersionsSeen, keeper: MenuKeeper[K], now: datetime
    ) -> list[str]:
        """Read again, in one snapshot, the kept menus of venues asked for lately whose version
        `seen` (a poll about to be trusted) shows moved, and keep them: the poll's thread calls
        this before the poll is trusted, so requests for a busy venue find its menu current in
        memory instead of each process reading it on the next request after every poll (one
        statement per kind of row for all of them, not a snapshot of ten statements each).
        Returns the venues read."""
        moved = [
            venue_id
            for venue_id, version, generation in keeper.asked(ASKED_SECONDS)
            if generation == seen.state.generation and seen.version(venue_id) > version
        ][:KEPT_CURRENT_AT_ONCE]
        if not moved:
            return []

        def read(tx: Tx, view: VenueMenu, state: ReadState) -> None:
            menus = venue_menus(tx, view, moved, now)
            for venue_id in moved:
                keeper.menu(state, venue_id, now, partial(menus.__getitem__, venue_id))

        attempt(db, VenueMenu, read, None)
        return moved

    async def _read(
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
