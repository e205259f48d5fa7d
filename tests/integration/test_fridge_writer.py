"""The per-fridge writer: callers queued during a save share the next append, and a process
with a stale copy of a fridge never refuses what the store allows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from domain.errors import SoldOut
from domain.fridge import Fridge
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import make_world


def wait_until(condition: object, seconds: float = 10.0) -> None:
    """Poll a condition with a deadline (a wait on state, not a sleep standing in for one)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.001)


def test_callers_that_queue_during_a_save_are_answered_by_one_append(side: WriteSide) -> None:
    world = make_world(side, soup_units=50)
    now, due = side.clock(), side.clock() + timedelta(minutes=10)
    held, release = threading.Event(), threading.Event()

    def slow_first(fridge: Fridge) -> bool:
        held.set()
        release.wait(timeout=10)
        return fridge.reserve("first", {world.soup: 1}, due, now)

    batches_before = side.writer.stats.batches
    with ThreadPoolExecutor(11) as pool:
        first = pool.submit(side.writer.execute, world.fridge_id, slow_first)
        held.wait(timeout=10)
        others = [
            pool.submit(
                side.writer.execute,
                world.fridge_id,
                lambda f, n=n: f.reserve(f"order-{n}", {world.soup: 1}, due, now),
            )
            for n in range(10)
        ]
        wait_until(lambda: side.writer.waiting(world.fridge_id) == 10)
        release.set()
        answers = [first.result(timeout=30)] + [o.result(timeout=30) for o in others]

    assert all(answer.value for answer in answers)
    assert side.writer.stats.batches - batches_before == 2
    queued_positions = {answer.position for answer in answers[1:]}
    assert len(queued_positions) == 1 and answers[0].position is not None
    assert queued_positions.pop() > answers[0].position


def test_a_process_with_a_stale_fridge_does_not_refuse_what_another_process_allowed(
    store_settings: Settings, clock: FakeClock
) -> None:
    """Two processes' write sides on one store: refusals must be decided on the latest state."""
    here = build_write_side(store_settings, clock=clock)
    there = build_write_side(store_settings, clock=clock)
    try:
        world = make_world(here, soup_units=1)
        kept = here.ordering.place("alice", "k1", world.fridge_id, {world.soup: 1})
        with_soup = {world.soup: 1}
        try:
            there.ordering.place("bob", "k2", world.fridge_id, with_soup)
            raise AssertionError("bob ordered a meal that alice holds")
        except SoldOut:
            pass
        # Elsewhere, alice cancels; here still remembers her reservation.
        there.ordering.cancel(kept.order_id, "alice", fridge_id=world.fridge_id)
        assert here.ordering.place("carol", "k3", world.fridge_id, with_soup).created
        # And a reservation made elsewhere can be confirmed here.
        dave = there.ordering.place("dave", "k4", world.fridge_id, {world.salad: 1})
        assert here.writer.execute(world.fridge_id, lambda f: f.confirm(dave.order_id)).value
    finally:
        here.close()
        there.close()
