"""No oversell under contention: many threads, then many processes, order from one fridge.

The fridge holds 200 units; callers try more than that. Exactly 200 orders succeed, every
other caller is told it is sold out, and the fridge's own events add up to the same story.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from domain.errors import SoldOut
from domain.fridge import Fridge
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import World, make_world

UNITS = 200
ATTEMPTS_PER_CALLER = 10


@dataclass(frozen=True)
class Tally:
    placed: list[str]
    sold_out: int
    other_errors: list[str]


def order_singles(side: WriteSide, world: World, caller: str, attempts: int) -> Tally:
    placed, sold_out, errors = [], 0, []
    for n in range(attempts):
        try:
            order = side.ordering.place(caller, f"{caller}-{n}", world.fridge_id, {world.soup: 1})
            placed.append(order.order_id)
        except SoldOut:
            sold_out += 1
        except Exception as error:  # anything else is a failure of the invariant's test
            errors.append(repr(error))
    return Tally(placed, sold_out, errors)


def hammer_with_threads(side: WriteSide, world: World, threads: int, tag: str) -> list[Tally]:
    start = threading.Barrier(threads)

    def caller(index: int) -> Tally:
        start.wait()
        return order_singles(side, world, f"{tag}-customer-{index}", ATTEMPTS_PER_CALLER)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(caller, range(threads)))


def assert_the_books_balance(side: WriteSide, world: World, tallies: list[Tally]) -> None:
    placed = [order_id for tally in tallies for order_id in tally.placed]
    attempts = sum(len(t.placed) + t.sold_out + len(t.other_errors) for t in tallies)
    assert [e for t in tallies for e in t.other_errors] == []
    assert len(placed) == UNITS, f"{len(placed)} orders placed from {UNITS} units"
    assert len(set(placed)) == UNITS
    assert sum(t.sold_out for t in tallies) == attempts - UNITS

    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.held(world.soup) == UNITS
    assert fridge.available(world.soup, fridge.today(side.clock())) == 0
    assert sorted(fridge.open_orders()) == sorted(placed)

    events = list(side.store.events.get(Fridge.create_id(world.fridge_id)))
    reserved = Counter(
        e.order_id  # type: ignore[attr-defined]
        for e in events
        if type(e).__name__ == "MealsReserved"
    )
    assert set(reserved) == set(placed) and set(reserved.values()) == {1}
    assert [e.originator_version for e in events] == list(range(len(events)))
    for order_id in placed:  # each reservation opens the order it promised, at this fridge
        assert side.ordering.ensure_order(order_id, world.fridge_id).fridge_id == world.fridge_id


def test_32_threads_never_oversell_one_fridge(side: WriteSide) -> None:
    world = make_world(side, soup_units=UNITS, salad_units=0)
    tallies = hammer_with_threads(side, world, threads=32, tag="t")
    assert_the_books_balance(side, world, tallies)
    assert side.writer.stats.batches < side.writer.stats.decisions, "callers were not batched"


def _process_main(
    settings: Settings, world: World, index: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    side = build_write_side(settings, clock=FakeClock())
    try:
        queue.put(hammer_with_threads(side, world, threads=8, tag=f"p{index}"))
    finally:
        side.close()


@pytest.mark.slow
def test_4_processes_never_oversell_one_fridge(side: WriteSide, store_settings: Settings) -> None:
    world = make_world(side, soup_units=UNITS, salad_units=0)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_process_main, args=(store_settings, world, i, results))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    tallies = [tally for _ in processes for tally in results.get(timeout=300)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert_the_books_balance(side, world, tallies)


def test_racing_retries_of_the_same_request_place_each_order_exactly_once(
    side: WriteSide,
) -> None:
    """Clients retry: 8 threads send the same 25 requests (same keys, same bodies) at once.
    Every request's answers name one order, that order exists, and it reserved once."""
    world = make_world(side, soup_units=100, salad_units=0)
    keys = [f"key-{n}" for n in range(25)]
    start = threading.Barrier(8)

    def retrying_client(index: int) -> dict[str, str]:
        start.wait()
        order = keys[index % 3 :] + keys[: index % 3]  # each client in its own order
        return {
            key: side.ordering.place("alice", key, world.fridge_id, {world.soup: 2}).order_id
            for key in order
        }

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(retrying_client, range(8)))

    for key in keys:
        assert len({answer[key] for answer in answers}) == 1, f"{key} placed two orders"
    order_ids = {answers[0][key] for key in keys}
    assert len(order_ids) == len(keys)
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    assert set(fridge.open_orders()) == order_ids
    assert fridge.held(world.soup) == 2 * len(keys)
    for order_id in order_ids:
        order = side.ordering.ensure_order(order_id, world.fridge_id)
        assert (order.customer_id, order.meal_lines()) == ("alice", {world.soup: 2})
