"""Processes busy on one fridge take turns instead of losing batch after batch to conflicts.

On PostgreSQL a turn is an advisory lock per stream (ops/postgres_events.py), held while a
writer reads what the others appended and appends its batch; the one that waits reads what
the one before it appended. Elsewhere a turn is only that read, and optimistic concurrency
decides alone. Either way nothing is sold twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from application.store import Turn
from domain.fridge import Fridge
from ops.postgres_events import TURNS
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock, settings_for
from tests.integration.test_fridge_writer import wait_until
from tests.integration.world import (
    alternate_four,
    assert_sold_once,
    make_world,
    one_soup_each,
)


@pytest.fixture
def postgres_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    return settings_for("postgres", request, tmp_path)


@pytest.fixture
def two_write_sides(
    postgres_settings: Settings, clock: FakeClock
) -> Iterator[tuple[WriteSide, WriteSide]]:
    """Two write sides on one PostgreSQL store, as two API processes would be."""
    here = build_write_side(postgres_settings, clock=clock)
    there = build_write_side(postgres_settings, clock=clock)
    yield here, there
    here.close()
    there.close()


def waiting_for_the_turn(dsn: str, fridge: Fridge) -> int:
    """Sessions queued for this fridge's turn (its advisory lock, not granted)."""
    key = int.from_bytes(fridge.id.bytes[:4], "big", signed=True) & 0xFFFFFFFF
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 2",
            (TURNS, key),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_turn_waits_for_the_other_process_and_reads_what_it_appended(
    two_write_sides: tuple[WriteSide, WriteSide], postgres_settings: Settings, clock: FakeClock
) -> None:
    here, there = two_write_sides
    world = make_world(here, soup_units=10)
    fridge = here.catalogue.fridge(world.fridge_id)
    before = fridge.version
    inside, leave = threading.Event(), threading.Event()

    def first() -> Turn:
        with here.store.turn(fridge.id, before) as turn:
            inside.set()
            leave.wait(timeout=30)
            fridge.reserve("first", {world.soup: 1}, clock() + timedelta(minutes=10), clock())
            here.store.append(fridge)
        return turn

    def second() -> Turn:
        with there.store.turn(fridge.id, before) as turn:
            return turn

    with ThreadPoolExecutor(2) as pool:
        first_turn = pool.submit(first)
        inside.wait(timeout=30)
        second_turn = pool.submit(second)
        assert postgres_settings.postgres_dsn is not None
        wait_until(lambda: waiting_for_the_turn(postgres_settings.postgres_dsn, fridge) == 1)
        leave.set()
        had_first, had_second = first_turn.result(timeout=30), second_turn.result(timeout=30)

    assert (had_first.waited, had_first.newer) == (False, [])
    assert had_second.waited
    assert [type(e).__name__ for e in had_second.newer] == ["MealsReserved"]
    assert [e.originator_version for e in had_second.newer] == [before + 1]
    with there.store.turn(fridge.id, before + 1) as after:  # given up: free at once
        assert (after.waited, after.newer) == (False, [])


def test_an_append_that_conflicts_in_a_turn_still_gives_the_turn_up(
    two_write_sides: tuple[WriteSide, WriteSide], clock: FakeClock
) -> None:
    here, there = two_write_sides
    world = make_world(here, soup_units=10)
    stale = here.catalogue.fridge(world.fridge_id)
    there.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})
    with pytest.raises(IntegrityError), here.store.turn(stale.id, stale.version + 1):
        stale.reserve("late", {world.soup: 1}, clock() + timedelta(minutes=10), clock())
        here.store.append(stale)  # the version alice's order took: a conflict
    with there.store.turn(stale.id, stale.version) as turn:
        assert not turn.waited


def test_elsewhere_a_turn_only_reads_what_is_new(side: WriteSide) -> None:
    world = make_world(side, soup_units=10)
    fridge = side.catalogue.fridge(world.fridge_id)
    before = fridge.version
    side.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})
    with side.store.turn(fridge.id, before) as turn:
        assert not turn.waited
        assert [type(e).__name__ for e in turn.newer] == ["MealsReserved"]


def test_two_processes_fought_over_one_fridge_take_turns_and_sell_nothing_twice(
    two_write_sides: tuple[WriteSide, WriteSide], clock: FakeClock
) -> None:
    """Two write sides (two API processes) on one fridge: each, after a conflict, takes
    turns; 16 callers then sell exactly the fridge's units, each reservation once."""
    units = 60
    sides = list(two_write_sides)
    world = make_world(sides[0], soup_units=units, salad_units=0)
    for side in sides:
        side.writer.turns_after = 1  # one conflict is enough to take turns
    warm = alternate_four(sides, world)
    assert all(side.writer.stats.turns > 0 for side in sides)

    sold, sold_out = one_soup_each(sides, world, callers=16, orders_each=10)

    order_ids = warm + sold
    assert sold_out == 16 * 10 + len(warm) - units
    fridge = assert_sold_once(sides[0], world, order_ids, units)
    reserved = Counter(
        e.order_id  # type: ignore[attr-defined]
        for e in sides[0].store.events.get(fridge.id)
        if type(e).__name__ == "MealsReserved"
    )
    assert set(reserved) == set(order_ids) and set(reserved.values()) == {1}
