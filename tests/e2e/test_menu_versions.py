"""Menus answered from memory while nothing they show has changed (issue 18, part 2).

Each API process polls the venue menu model's per-venue versions; a venue whose version has
not moved is answered from the menu it keeps, at the position of the last poll, without a
database read. Database reads are counted through /metrics
(`farmacy_read_model_reads_total`), as an operator would see them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial

import httpx

from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import available, live_api, orders_while_reading, position
from tests.integration.world import make_world

__all__ = ["api", "live_api"]
READS = re.compile(r'^farmacy_read_model_reads_total\{projection="venue_menu"\} (\S+)$', re.M)


def venue_menu(api: Api, venue_id: str, min_position: int | None = None) -> httpx.Response:
    params = {} if min_position is None else {"min_position": min_position}
    answer = api.client.get(
        f"/venues/{venue_id}/menu", params=params, headers=api.as_(Role.CUSTOMER, "ana")
    )
    assert answer.status_code == 200, answer.text
    return answer


def database_reads(api: Api) -> float:
    """How many times requests have read the venue menu model's database (from /metrics)."""
    found = READS.search(api.client.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def until(
    ask: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool], timeout: float = 10
) -> httpx.Response:
    """Ask again until the answer is `done` (or fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = ask()
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"not done after {timeout} s: {answer.text}"
        time.sleep(0.02)


def from_memory_at(
    api: Api, ask: Callable[[], httpx.Response], wanted: int, timeout: float = 10
) -> httpx.Response:
    """Ask until an answer at `wanted` or later comes from memory (this process has polled
    the model at `wanted`): fails after `timeout` seconds."""

    def done(answer: httpx.Response) -> bool:
        return position(answer) >= wanted and database_reads(api) == reads[-1]

    def asked() -> httpx.Response:
        reads.append(database_reads(api))
        return ask()

    reads: list[float] = []
    return until(asked, done, timeout)


def test_a_write_to_one_venue_leaves_another_venues_menu_served_from_memory(
    live_api: Api,
) -> None:
    api, here = live_api, live_api.world
    there = make_world(api.side)
    start = api.side.store.position()
    kept = venue_menu(api, there.venue_id, start)
    assert available(kept) == {there.soup: 10, there.salad: 5}

    wanted = position(api.order("ana", "k1", {here.soup: 2}))
    # once this process has seen the write, the venue written to shows it ...
    seen = from_memory_at(api, lambda: venue_menu(api, here.venue_id), wanted)
    assert available(seen) == {here.soup: 8, here.salad: 5}
    # ... and the other venue's menu is answered from memory, at least at that position
    reads = database_reads(api)
    for _ in range(5):
        answer = venue_menu(api, there.venue_id)
        assert answer.json()["items"] == kept.json()["items"]
        assert position(answer) >= wanted
        assert answer.headers["ETag"] == kept.headers["ETag"]
    assert database_reads(api) == reads


def test_a_write_is_on_its_venues_menu_at_once_with_min_position_and_soon_without(
    live_api: Api,
) -> None:
    api, world = live_api, live_api.world
    before = venue_menu(api, world.venue_id, api.side.store.position())
    assert available(before) == {world.soup: 10, world.salad: 5}

    wanted = position(api.order("ana", "k1", {world.soup: 3}))
    at_once = venue_menu(api, world.venue_id, wanted)
    assert position(at_once) >= wanted
    assert available(at_once) == {world.soup: 7, world.salad: 5}

    wanted = position(api.order("ana", "k2", {world.salad: 1}))

    def truthful(answer: httpx.Response) -> bool:  # never a position its stock is not at
        assert available(answer)[world.salad] == (4 if position(answer) >= wanted else 5)
        return position(answer) >= wanted

    until(lambda: venue_menu(api, world.venue_id), truthful)
    from_memory_at(api, lambda: venue_menu(api, world.venue_id), wanted)
    reads = database_reads(api)
    assert available(venue_menu(api, world.venue_id)) == {world.soup: 7, world.salad: 4}
    assert database_reads(api) == reads  # unchanged since: from memory


def test_no_menu_is_ever_older_or_newer_than_the_position_it_claims(live_api: Api) -> None:
    """Writers order at two venues while readers read both menus; every answer's stock is
    exactly what the placed orders up to its claimed position leave."""
    api = live_api
    worlds = [api.world, make_world(api.side, soup_units=12, salad_units=0)]
    initial = {worlds[0].venue_id: 10, worlds[1].venue_id: 12}
    answers: list[tuple[str, int, int]] = []  # (venue, position, soup available)

    def read(index: int) -> None:
        world = worlds[index % 2]
        answer = venue_menu(api, world.venue_id)
        answers.append((world.venue_id, position(answer), available(answer)[world.soup]))

    start = api.side.store.position()
    for world in worlds:  # both venues' deliveries are in the model
        assert available(venue_menu(api, world.venue_id, start))[world.soup] > 0
    tries = {venue: units + 2 for venue, units in initial.items()}  # the last two sold out
    # (venue, position) of each one-soup order
    placed = orders_while_reading(api, worlds, lambda world: world.venue_id, tries, 3, read)
    last = max(at for _, at in placed)
    for world in worlds:  # and from memory once this process has polled the last write
        answer = from_memory_at(api, partial(venue_menu, api, world.venue_id), last)
        answers.append((world.venue_id, position(answer), available(answer)[world.soup]))

    assert len(placed) == 22
    for venue, at, soup in answers:
        sold = sum(1 for v, p in placed if v == venue and p <= at)
        assert soup == initial[venue] - sold, (venue, at, soup)


KEPT_CURRENT = re.compile(r"^farmacy_menus_kept_current_total (\S+)$", re.M)


def test_a_venue_asked_for_lately_is_read_again_by_the_poll_not_by_its_next_request(
    live_api: Api,
) -> None:
    """After a write to a venue whose menu was asked for lately, the poll that sees the write
    reads the menu again before it is trusted: no request reads the database, and every
    answer is the stock at the position it claims (before the write, or after it)."""
    api, world = live_api, live_api.world
    start = api.side.store.position()
    from_memory_at(api, lambda: venue_menu(api, world.venue_id), start)  # kept and asked for
    reads = database_reads(api)
    kept_current = float(KEPT_CURRENT.search(api.client.get("/metrics").text).group(1))  # type: ignore[union-attr]

    wanted = position(api.order("ana", "k1", {world.soup: 3}))

    def truthful(answer: httpx.Response) -> bool:
        assert available(answer)[world.soup] == (7 if position(answer) >= wanted else 10)
        return position(answer) >= wanted

    until(lambda: venue_menu(api, world.venue_id), truthful)
    assert database_reads(api) == reads  # every answer from memory, the new one included
    now = float(KEPT_CURRENT.search(api.client.get("/metrics").text).group(1))  # type: ignore[union-attr]
    assert now > kept_current
