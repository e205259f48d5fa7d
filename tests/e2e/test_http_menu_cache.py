"""The venue menu cache and the remembered tokens: a kept menu is served only for the exact
state of the read model it was read at and the same local days, never for an older position
than the caller asked for; both stay bounded; a remembered token still expires."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import msgspec
import pytest
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import Token

from interfaces.http import schemas
from interfaces.http.auth import Caller, Role, VerifiedTokens, issue_token
from interfaces.http.menu_cache import EncodedVenueMenu, MenuCache, VenueMenus, etag_digest
from interfaces.http.reading import VERSIONS_THREAD
from projections.database import SQLiteDatabase, Tx
from projections.freshness import read_state
from projections.projection import create_bookkeeping
from tests.conftest import FakeClock, unique
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import available, live_api, menu

__all__ = ["api", "live_api"]
NO_ORDER = "/orders/00000000-0000-0000-0000-000000000000"


def menus_of(api: Api) -> VenueMenus:
    found: VenueMenus = api.client.app.state["menus"]
    return found


def test_a_repeated_menu_is_kept_and_an_order_is_never_hidden_by_it(live_api: Api) -> None:
    api, world = live_api, live_api.world
    cache = menus_of(api).cache
    first = menu(api, api.side.store.position())
    assert available(first) == {world.soup: 10, world.salad: 5}
    misses = cache.misses
    again = menu(api)
    assert cache.misses == misses and cache.hits >= 1  # served without reading the model
    assert again.json()["items"] == first.json()["items"]
    assert again.json()["position"] == first.json()["position"]
    assert again.headers["ETag"] == first.headers["ETag"]

    placed = api.order("ana", "k1", {world.soup: 3})
    wanted = placed.json()["position"]
    after = menu(api, wanted)  # the kept menu is older than `wanted`: never served for it
    assert after.json()["position"] >= wanted
    assert available(after) == {world.soup: 7, world.salad: 5}
    assert after.headers["ETag"] != first.headers["ETag"]
    assert cache.misses > misses
    # and the newer menu is what is kept now
    assert available(menu(api)) == {world.soup: 7, world.salad: 5}


def test_a_kept_menu_is_answered_from_the_state_alone_without_a_snapshot(
    live_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a snapshot is three round trips (BEGIN, the reads, COMMIT); a menu kept
    for the model's exact state needs only the one statement that reads that state."""
    api, world = live_api, live_api.world
    db = menus_of(api).read.dbs["venue_menu"]
    opened = 0
    snapshot = db.snapshot

    @contextmanager
    def counted() -> Iterator[Tx]:
        nonlocal opened
        if threading.current_thread().name != VERSIONS_THREAD:  # requests', not the poll's
            opened += 1
        with snapshot() as tx:
            yield tx

    monkeypatch.setattr(db, "snapshot", counted)
    first = menu(api, api.side.store.position())
    assert opened == 1  # nothing kept yet: read in a snapshot
    again = menu(api)
    assert opened == 1 and again.json() == {**first.json(), "age_seconds": ANY}

    placed = api.order("ana", "k1", {world.soup: 3})
    after = menu(api, placed.json()["position"])
    assert opened == 2  # the state moved on: what was kept does not fit it
    assert available(after) == {world.soup: 7, world.salad: 5}


def test_every_answer_shows_exactly_the_state_at_its_position(live_api: Api) -> None:
    """Whatever the cache holds, a menu read at a position reports that position's stock."""
    api, world = live_api, live_api.world
    start = menu(api, api.side.store.position())
    seen = {start.json()["position"]: available(start)}
    for n in range(5):
        placed = api.order("ana", f"k{n}", {world.soup: 1})
        for _ in range(3):
            answer = menu(api)
            at = answer.json()["position"]
            assert seen.setdefault(at, available(answer)) == available(answer)
        answer = menu(api, placed.json()["position"])
        assert available(answer)[world.soup] == 10 - (n + 1)


def test_a_kept_menu_is_not_served_on_another_local_day(live_api: Api) -> None:
    """What can be sold depends on the fridge's local date: a new day reads again, even though
    no event moved the model (the batch's best-before has passed)."""
    api, world = live_api, live_api.world
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    assert available(menu(api, api.side.store.position())) == {world.soup: 10, world.salad: 5}
    clock.advance(days=3)  # the batch was delivered with a best-before two days ahead
    assert available(menu(api)) == {world.soup: 0, world.salad: 0}


def test_the_cache_keeps_the_newest_menu_of_a_bounded_number_of_venues(live_api: Api) -> None:
    api, world = live_api, live_api.world
    venues = [world.venue_id]
    for _ in range(2):
        venue = unique("venue")
        api.side.catalogue.register_venue(venue, world.city_id, "Another")
        api.side.catalogue.install_fridge(unique("fridge"), venue)
        venues.append(venue)
    position = api.side.store.position()
    read = menus_of(api).read
    now = api.side.clock()
    cache = MenuCache(venues=2)

    def read_menu(venue: str) -> None:
        asyncio.run(read.venue_menu.menu(venue, now, position, cache))

    for venue in venues:
        read_menu(venue)
    assert len(cache) == 2 and cache.misses == 3
    read_menu(venues[2])  # the newest two are kept
    assert cache.hits == 1
    read_menu(venues[0])  # the oldest was forgotten
    assert cache.misses == 4 and len(cache) == 2
    for n in range(20):  # made-up ids are read (and are empty) but never kept
        read_menu(f"no-such-venue-{n}")
    assert len(cache) == 2
    read_menu(venues[0])
    assert cache.hits == 2
    # a venue's newer read replaces its older one: positions never pile up
    for n in range(3):
        placed = api.order("ana", f"k{n}", {world.soup: 1})
        position = placed.json()["position"]
        read_menu(venues[0])
    assert len(cache) == 2


def test_the_read_state_names_every_shard_and_the_generation(tmp_path: Path) -> None:
    """Two shards: the reported position is the slower one's, but the state (the cache's key)
    changes whenever either moves, and with the active generation."""
    db = SQLiteDatabase(tmp_path / "model.sqlite")
    try:
        with db.transaction() as tx:
            create_bookkeeping(tx)
            for shard, position, at in (("0/2", 10, "2026-11-21T10:00"), ("1/2", 20, None)):
                tx.execute(
                    "INSERT INTO projection_checkpoints (name, generation, shard, position, "
                    "event_at) VALUES ('venue_menu', 1, ?, ?, ?)",
                    (shard, position, at),
                )
        with db.snapshot() as tx:
            before = read_state(tx, "venue_menu")
        assert (before.generation, before.position, before.event_at) == (1, 10, "2026-11-21T10:00")
        with db.transaction() as tx:
            tx.execute("UPDATE projection_checkpoints SET position = 30 WHERE shard = '1/2'")
        with db.snapshot() as tx:
            moved = read_state(tx, "venue_menu")
        assert moved.position == 10 and moved.key != before.key
        with db.transaction() as tx:
            tx.execute("INSERT INTO projection_generations (name, active) VALUES ('venue_menu', 2)")
        with db.snapshot() as tx:
            rebuilt = read_state(tx, "venue_menu")
        assert (rebuilt.generation, rebuilt.position, rebuilt.event_at) == (2, 0, None)
        assert rebuilt.key != moved.key
    finally:
        db.close()


def test_the_encoded_menu_is_the_documented_body_byte_for_byte() -> None:
    entries = [schemas.MenuEntry("soup", "Soup", "6.50", "EUR", {"vegan": True}, 3, None)]
    at = datetime(2026, 11, 21, 11, 0, 0, 123456, tzinfo=UTC)
    fresh: dict[str, Any] = {"position": 42, "as_of": at, "age_seconds": 1.5}
    documented = schemas.VenueMenu(venue_id="gym", items=entries, **fresh)
    items = msgspec.json.encode(entries)
    encoded = EncodedVenueMenu(venue_id="gym", items=msgspec.Raw(items), **fresh)
    assert msgspec.json.encode(encoded) == msgspec.json.encode(documented)
    # the ETag is what it was before the cache: a digest over `[items]`
    assert (
        etag_digest(items)
        == hashlib.blake2b(msgspec.json.encode((entries,)), digest_size=16).hexdigest()
    )


def passed(exp: datetime) -> AuthenticationResult:
    token = Token(exp=exp, sub="ana")
    return AuthenticationResult(user=Caller(Role.CUSTOMER, "ana"), auth=token)


def test_a_remembered_token_expires_and_belongs_to_its_secret() -> None:
    tokens = VerifiedTokens(size=2)
    exp = datetime.now(UTC) + timedelta(minutes=5)
    result = passed(exp)
    tokens.put("secret", "t1", result)
    now = time.time()
    assert tokens.get("secret", "t1", now) is result
    assert tokens.get("another secret", "t1", now) is None
    assert tokens.get("secret", "t1", exp.timestamp()) is None  # expired: checked again
    assert len(tokens) == 0
    for n in range(5):
        tokens.put("secret", f"t{n}", passed(exp))
    assert len(tokens) == 2
    assert tokens.get("secret", "t0", now) is None and tokens.get("secret", "t4", now) is not None


def test_a_token_that_passed_is_refused_once_it_expires(live_api: Api) -> None:
    api = live_api  # a missing order is a 404 once the orders model is up
    token = issue_token(api.secret, Role.OPERATOR, "op", timedelta(seconds=2))
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get(NO_ORDER, headers=headers).status_code == 404
    assert api.client.get(NO_ORDER, headers=headers).status_code == 404
    exp = msgspec.json.decode(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    assert api.client.get(NO_ORDER, headers=headers).status_code == 401


@pytest.mark.parametrize("bad", ["not-a-token", "a.b.c"])
def test_a_bad_token_is_still_401_after_a_good_one(live_api: Api, bad: str) -> None:
    api = live_api  # a missing order is a 404 once the orders model is up
    good = api.as_(Role.OPERATOR)
    assert api.client.get(NO_ORDER, headers=good).status_code == 404
    refused = api.client.get(NO_ORDER, headers={"Authorization": f"Bearer {bad}"})
    assert refused.status_code == 401
