"""The command lane: never more than its size at the write side, turns in arrival order, and a
full queue answered at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest
from prometheus_client import REGISTRY

from interfaces.http.commands import CommandLane, CommandQueueFull


def shed() -> float:
    """Commands shed so far, as /metrics shows them."""
    found = REGISTRY.get_sample_value("farmacy_commands_shed_total")
    assert found is not None, "farmacy_commands_shed is not registered"
    return found


class Gate:
    """Commands that hold their turn until the test opens the gate, counting who is inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.started: list[int] = []
        self.changed = threading.Condition()
        self.opened = threading.Event()

    def command(self, number: int) -> int:
        with self.changed:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.started.append(number)
            self.changed.notify_all()
        self.opened.wait(timeout=10)
        with self.changed:
            self.inside -= 1
        return number

    def wait_for(self, holds: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(holds, timeout=10)


async def until(holds: Callable[[], bool]) -> None:
    """Yield to the event loop until `holds()` (the tasks only move when we yield)."""
    with anyio.fail_after(10):
        while not holds():
            await anyio.lowlevel.checkpoint()


def test_no_more_than_its_size_run_at_once_and_every_command_finishes() -> None:
    lane, gate = CommandLane(size=3, queue=100), Gate()
    results: list[int] = []

    async def one(number: int) -> None:
        results.append(await lane.run(gate.command, number))

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for number in range(40):
                tasks.start_soon(one, number)
            await anyio.to_thread.run_sync(gate.wait_for, lambda: gate.inside == 3)
            await until(lambda: lane.waiting == 37)
            assert lane.running == 3
            gate.opened.set()

    anyio.run(main)
    assert sorted(results) == list(range(40))
    assert gate.most_inside == 3
    assert lane.running == 0 and lane.waiting == 0


def test_turns_are_taken_in_arrival_order() -> None:
    lane, gate = CommandLane(size=1, queue=100), Gate()

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for number in range(10):
                tasks.start_soon(lane.run, gate.command, number)
                # the next one arrives only once this one is inside or in the queue
                await until(lambda n=number: lane.running + lane.waiting == n + 1)
            gate.opened.set()

    anyio.run(main)
    assert gate.started == list(range(10))


def test_a_command_beyond_a_full_queue_is_refused_at_once_and_the_others_still_run() -> None:
    lane, gate = CommandLane(size=1, queue=2), Gate()
    results: list[int] = []
    shed_before = shed()

    async def one(number: int) -> None:
        results.append(await lane.run(gate.command, number))

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            for number in range(3):
                tasks.start_soon(one, number)
            await until(lambda: lane.running == 1 and lane.waiting == 2)
            with pytest.raises(CommandQueueFull) as refused:
                await lane.run(gate.command, 99)
            assert refused.value.waiting == 2
            gate.opened.set()

    anyio.run(main)
    assert sorted(results) == [0, 1, 2]
    assert 99 not in gate.started
    assert shed() == shed_before + 1


def test_a_lane_without_a_queue_still_runs_a_command_when_a_turn_is_free() -> None:
    lane = CommandLane(size=2, queue=0)
    assert anyio.run(lane.run, lambda x: x * 2, 21) == 42


@pytest.mark.parametrize(("size", "queue"), [(0, 10), (1, -1)])
def test_a_lane_needs_a_turn_and_a_queue_that_is_not_negative(size: int, queue: int) -> None:
    with pytest.raises(ValueError, match="size >= 1"):
        CommandLane(size, queue)


def test_a_closed_lane_lets_its_commands_finish_and_serves_again_when_the_app_restarts() -> None:
    lane = CommandLane(size=1, queue=1)
    assert anyio.run(lane.run, lambda x: x + 1, 1) == 2
    lane.close()
    assert anyio.run(lane.run, lambda x: x + 1, 2) == 3
    lane.close()
