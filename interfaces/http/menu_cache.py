"""Venue menus this process already read, kept by the read model's exact state (bounded LRU).

`GET /venues/{id}/menu` is the API's most frequent read and, between two writes, the same
answer again and again; reading it costs six statements, summing stock in Python and encoding.
A menu read at a `ReadState.key` is made of the same rows for as long as that key stands, so
it is kept here as its encoded items with their ETag digest: one entry per venue (a newer read
replaces the older one), at most `venues` venues (the least recently used goes first). An
entry is served only when:

- the model is at exactly the state the menu was read at (same generation, every shard at the
  same position), as the request's own snapshot says, after `min_position` was reached: so a
  cached menu is never older than what the caller asked for, nor than what the model holds;
- every fridge timezone of the venue is still on the local day the menu was read on (what can
  be sold depends on best-before dates against the fridge's local date);
- its promotional prices still hold: the price list has taken in no promotion sheet since,
  and no promotion of its meals has started or ended (`until`): a campaign shows from its
  first second to its last, cache or not.

Venues the model has never heard of are read but not kept, so made-up ids cannot crowd out
real menus.

Each entry also keeps the venue's version in the snapshot it was read in (the position of the
last event that changed what the menu shows; projections/versions.py) and the state it
was read at. `current` serves it with no database read at all while the version the API's
last poll saw for the venue is the same, stamped with the newer of the read's and the poll's
position: the model showed exactly that menu at both; or while it was read after that poll
(`versions.newest`), stamped with its own. Otherwise the answer's `position`,
`as_of` and `age_seconds` come from the request's own read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec
from litestar.di import NamedDependency

from interfaces.http import schemas
from interfaces.http.reading import ReadSide
from ops.root import WriteSide
from projections.freshness import ReadState
from projections.venue_menu import Menu, VenueFridge
from projections.versions import VersionsSeen, local_days, newest

VENUES = 2048
"""Venues whose menu one API process keeps (a menu is a few kB: a few MB at most)."""


class EncodedVenueMenu(msgspec.Struct, kw_only=True):
    """`schemas.VenueMenu` with its items already encoded: the same JSON, byte for byte."""

    position: int
    as_of: datetime | None
    age_seconds: float | None
    venue_id: str
    items: msgspec.Raw
    stale_fridges: list[str] = []


def etag_digest(encoded_items: bytes) -> str:
    """The menu's ETag digest: over `[items]`, as the menu's ETag has always been computed."""
    return hashlib.blake2b(b"[" + encoded_items + b"]", digest_size=16).hexdigest()


@dataclass(frozen=True)
class CachedMenu:
    key: tuple[Any, ...]
    """The `ReadState.key` it was read at."""
    timezones: tuple[str, ...]
    """The timezones of the venue's fridges (none: the model does not know the venue)."""
    days: tuple[date, ...]
    """Their local dates when it was read."""
    items: bytes
    """The items, encoded as the response carries them."""
    digest: str
    sheets: int = 0
    """The promotion sheets the price list had taken in when it was priced."""
    stale: tuple[str, ...] = ()
    """The venue's fridges marked stale when it was read."""
    until: datetime | None = None
    """When a promotion of its meals next starts or ends (None: none will)."""
    version: int = -1
    """The venue's version in the snapshot it was read in (-1: not known)."""
    read_at: ReadState | None = None
    """The model's state it was read at."""
    fridges: tuple[VenueFridge, ...] = ()
    """The venue's fridges and their state (`GET /venues/{id}/fridges`)."""

    @property
    def known(self) -> bool:
        return bool(self.timezones)

    def fits(self, key: tuple[Any, ...], now: datetime, sheets: int = 0) -> bool:
        return key == self.key and self.holds(now, sheets)

    def holds(self, now: datetime, sheets: int) -> bool:
        """Its local days and its promotional prices are still those of `now`."""
        return (
            local_days(now, self.timezones) == self.days
            and sheets == self.sheets
            and (self.until is None or now < self.until)
        )


class Promotions(Protocol):
    """What prices a menu's promotions (the write side's price list)."""

    def promotions_seen(self) -> int: ...

    def promotional(
        self,
        meal_id: str,
        regular: Decimal,
        venue_id: str | None,
        city_id: str | None,
        at: datetime,
    ) -> tuple[Decimal | None, datetime | None]: ...


def encoded(
    key: tuple[Any, ...],
    menu: Menu,
    now: datetime,
    venue_id: str = "",
    promotions: Promotions | None = None,
) -> CachedMenu:
    """A menu read at state `key`, priced at `now`, encoded as the response carries it."""
    sheets = promotions.promotions_seen() if promotions is not None else 0
    entries, until = [], None
    for i in menu.items:
        offer: Decimal | None = None
        if promotions is not None:
            offer, changes = promotions.promotional(
                i.meal_id, Decimal(i.price), venue_id, None, now
            )
            if changes is not None and (until is None or changes < until):
                until = changes
        entries.append(
            schemas.VenueMenuEntry(
                i.meal_id,
                i.name,
                i.price,
                i.currency,
                i.details,
                i.available,
                None if offer is None else str(offer),
                [schemas.FridgeUnits(fridge_id, units) for fridge_id, units in i.fridges],
            )
        )
    items = msgspec.json.encode(entries)
    days = local_days(now, menu.timezones)
    digest = etag_digest(items + "".join(menu.stale).encode())
    return CachedMenu(
        key,
        menu.timezones,
        days,
        items,
        digest,
        sheets,
        menu.stale,
        until,
        menu.version,
        fridges=menu.fridges,
    )


class MenuCache:
    """The newest menu read of up to `venues` venues (thread-safe: PostgreSQL reads run in
    worker threads)."""

    def __init__(self, venues: int = VENUES, promotions: Promotions | None = None) -> None:
        self.venues = venues
        self.promotions = promotions
        self._menus: OrderedDict[str, CachedMenu] = OrderedDict()
        self._asked: dict[str, float] = {}  # venue -> time.monotonic() of its last request
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.from_memory = 0  # answered without the database (`current`)

    def __len__(self) -> int:
        return len(self._menus)

    def kept(self, state: ReadState, venue_id: str, now: datetime) -> CachedMenu | None:
        """The venue's menu if it was read at exactly `state` and on the same local days."""
        with self._lock:
            found = self._menus.get(venue_id)
            sheets = self.promotions.promotions_seen() if self.promotions is not None else 0
            if found is not None and found.fits(state.key, now, sheets):
                self._menus.move_to_end(venue_id)
                self.hits += 1
                return found
        return None

    def current(
        self, seen: VersionsSeen, venue_id: str, now: datetime
    ) -> tuple[CachedMenu, ReadState] | None:
        """The venue's menu if nothing `seen` knows is newer than it (`versions.newest`),
        on the same local days and promotions: stamped with the newer of the two states."""
        with self._lock:
            found = self._menus.get(venue_id)
            if found is None or found.read_at is None:
                return None
            self._asked[venue_id] = time.monotonic()
            sheets = self.promotions.promotions_seen() if self.promotions is not None else 0
            if (
                found.read_at.generation != seen.state.generation
                or not newest(found.read_at, found.version, seen, venue_id)
                or not found.holds(now, sheets)
            ):
                return None
            self._menus.move_to_end(venue_id)
            self.hits += 1
            self.from_memory += 1
        return found, max(found.read_at, seen.state, key=lambda state: state.position)

    def menu(
        self, state: ReadState, venue_id: str, now: datetime, read: Callable[[], Menu]
    ) -> CachedMenu:
        """The venue's menu at `state`: kept from before, or `read()` in the state's snapshot."""
        found = self.kept(state, venue_id, now)
        if found is not None:
            return found
        menu = replace(encoded(state.key, read(), now, venue_id, self.promotions), read_at=state)
        with self._lock:
            self.misses += 1
            if menu.known:
                self._menus[venue_id] = menu
                self._menus.move_to_end(venue_id)
                while len(self._menus) > self.venues:
                    gone, _ = self._menus.popitem(last=False)
                    self._asked.pop(gone, None)
        return menu

    def asked(self, within: float) -> list[tuple[str, int, int]]:
        """The venues whose menu a request found here in the last `within` seconds, the most
        recently used first, with the version and generation each was read at."""
        since = time.monotonic() - within
        with self._lock:
            return [
                (venue_id, menu.version, menu.read_at.generation)
                for venue_id, menu in reversed(self._menus.items())
                if menu.read_at is not None and self._asked.get(venue_id, since - 1) >= since
            ]


@dataclass(frozen=True)
class VenueMenus:
    """Everything the venue menu route needs, as one dependency: Litestar resolves two or more
    dependencies of a handler in an anyio task group, which cost a cached menu a fifth of its
    CPU."""

    side: WriteSide
    read: ReadSide
    cache: MenuCache


MenuReading = NamedDependency[VenueMenus]
"""Provided from the app (a parameter named `menus`)."""
