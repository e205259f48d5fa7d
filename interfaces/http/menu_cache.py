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
  be sold depends on best-before dates against the fridge's local date).

Venues the model has never heard of are read but not kept, so made-up ids cannot crowd out
real menus. The answer's `position`, `as_of` and `age_seconds` always come from the request's
own read, never from the cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from litestar.di import NamedDependency

from domain.shelf import local_day
from interfaces.http import schemas
from interfaces.http.reading import ReadSide
from ops.root import WriteSide
from projections.freshness import ReadState
from projections.venue_menu import Menu

VENUES = 2048
"""Venues whose menu one API process keeps (a menu is a few kB: a few MB at most)."""


class EncodedVenueMenu(msgspec.Struct, kw_only=True):
    """`schemas.VenueMenu` with its items already encoded: the same JSON, byte for byte."""

    position: int
    as_of: datetime | None
    age_seconds: float | None
    venue_id: str
    items: msgspec.Raw


def etag_digest(encoded_items: bytes) -> str:
    """The menu's ETag digest: over `[items]`, as the menu's ETag has always been computed."""
    return hashlib.blake2b(b"[" + encoded_items + b"]", digest_size=16).hexdigest()


def local_days(now: datetime, timezones: tuple[str, ...]) -> tuple[date, ...]:
    return tuple(local_day(now, timezone) for timezone in timezones)


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

    @property
    def known(self) -> bool:
        return bool(self.timezones)

    def fits(self, key: tuple[Any, ...], now: datetime) -> bool:
        return key == self.key and local_days(now, self.timezones) == self.days


def encoded(key: tuple[Any, ...], menu: Menu, now: datetime) -> CachedMenu:
    """A menu read at state `key`, encoded as the response carries it."""
    items = msgspec.json.encode(
        [
            schemas.MenuEntry(i.meal_id, i.name, i.price, i.currency, i.details, i.available)
            for i in menu.items
        ]
    )
    days = local_days(now, menu.timezones)
    return CachedMenu(key, menu.timezones, days, items, etag_digest(items))


class MenuCache:
    """The newest menu read of up to `venues` venues (thread-safe: PostgreSQL reads run in
    worker threads)."""

    def __init__(self, venues: int = VENUES) -> None:
        self.venues = venues
        self._menus: OrderedDict[str, CachedMenu] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._menus)

    def kept(self, state: ReadState, venue_id: str, now: datetime) -> CachedMenu | None:
        """The venue's menu if it was read at exactly `state` and on the same local days."""
        with self._lock:
            found = self._menus.get(venue_id)
            if found is not None and found.fits(state.key, now):
                self._menus.move_to_end(venue_id)
                self.hits += 1
                return found
        return None

    def menu(
        self, state: ReadState, venue_id: str, now: datetime, read: Callable[[], Menu]
    ) -> CachedMenu:
        """The venue's menu at `state`: kept from before, or `read()` in the state's snapshot."""
        found = self.kept(state, venue_id, now)
        if found is not None:
            return found
        menu = encoded(state.key, read(), now)
        with self._lock:
            self.misses += 1
            if menu.known:
                self._menus[venue_id] = menu
                self._menus.move_to_end(venue_id)
                while len(self._menus) > self.venues:
                    self._menus.popitem(last=False)
        return menu


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
