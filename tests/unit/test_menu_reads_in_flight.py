"""A venue's menu is read from the database once at a time (projections/venue_menu.py):
requests that need no particular position wait for the read in flight instead of reading the
same menu again. The reader and the keeper are the ports `VenueMenuQueries` talks to; here
they count what is asked of them and hold the read until the test lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.freshness import Answer, ReadsInFlight, ReadState, stamped
from projections.venue_menu import VenueMenuQueries
from projections.versions import VersionsSeen

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def state(position: int) -> ReadState:
    return ReadState(1, position, None, (1, (("0", position),)))


class HeldReader:
    """Counts database reads; each waits for `release`, then finds the model at the next of
    `at` (the last one again once they run out)."""

    def __init__(self, *at: int) -> None:
        self.at = list(at)
        self.reads: list[int | None] = []  # the min_position of each read
        self.release = asyncio.Event()

    def read(self, projection: Any, read: Any, min_position: int | None) -> Answer[Any]:
        raise AssertionError("menus are read without blocking the event loop")

    async def read_async(
        self,
        projection: Any,
        read: Callable[[Any, Any, ReadState], Any],
        min_position: int | None,
        kept: Any = None,
    ) -> Answer[Any]:
        self.reads.append(min_position)
        await self.release.wait()
        here = state(self.at.pop(0) if len(self.at) > 1 else self.at[0])
        return stamped(read(None, None, here), here)


class Keeper:
    """Keeps the newest menu read; `current` serves it while it is as new as the poll."""

    def __init__(self) -> None:
        self.read_at: ReadState | None = None

    def kept(self, at: ReadState, venue_id: str, now: datetime) -> str | None:
        return None

    def menu(self, at: ReadState, venue_id: str, now: datetime, read: Callable[[], Any]) -> str:
        self.read_at = at
        return f"menu of {venue_id} at {at.position}"

    def current(
        self, seen: VersionsSeen, venue_id: str, now: datetime
    ) -> tuple[str, ReadState] | None:
        if self.read_at is None or self.read_at.position < seen.state.position:
            return None
        return f"menu of {venue_id} at {self.read_at.position}", self.read_at


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def leader_and_joiner(
    queries: VenueMenuQueries, keeper: Keeper
) -> tuple[asyncio.Task[Answer[str]], asyncio.Task[Answer[str]]]:
    """Two requests for the gym's menu, the second while the first one's read is in flight."""
    first = asyncio.create_task(queries.menu("gym", NOW, None, keeper))
    await settle()
    second = asyncio.create_task(queries.menu("gym", NOW, None, keeper))
    await settle()
    return first, second


def test_requests_for_a_changed_venue_share_one_database_read() -> None:
    async def scenario() -> None:
        reader, keeper = HeldReader(12), Keeper()
        queries = VenueMenuQueries(reader, lambda: VersionsSeen(state(11)))
        asked = [asyncio.create_task(queries.menu("gym", NOW, None, keeper)) for _ in range(20)]
        await settle()
        assert reader.reads == [None]  # one read in flight, nineteen waiting for it
        reader.release.set()
        answers = await asyncio.gather(*asked)
        assert {(a.value, a.position) for a in answers} == {("menu of gym at 12", 12)}
        assert reader.reads == [None]

    asyncio.run(scenario())


def test_a_request_with_min_position_reads_for_itself() -> None:
    async def scenario() -> None:
        reader, keeper = HeldReader(30), Keeper()
        queries = VenueMenuQueries(reader, lambda: VersionsSeen(state(11)))
        plain = asyncio.create_task(queries.menu("gym", NOW, None, keeper))
        await settle()
        mine = asyncio.create_task(queries.menu("gym", NOW, 25, keeper))
        await settle()
        assert reader.reads == [None, 25]  # it does not wait on a read that may be older
        reader.release.set()
        assert (await mine).position >= 25
        await plain

    asyncio.run(scenario())


def test_a_joiner_reads_for_itself_when_the_shared_read_is_older_than_its_poll() -> None:
    async def scenario() -> None:
        reader, keeper = HeldReader(12, 16), Keeper()
        polls = [VersionsSeen(state(11))]
        first, second = await leader_and_joiner(VenueMenuQueries(reader, lambda: polls[-1]), keeper)
        polls.append(VersionsSeen(state(15)))  # a poll saw the venue move on meanwhile
        reader.release.set()
        assert (await first).position == 12
        await settle()
        assert reader.reads == [None, None]  # the second read again: 12 is older than 15
        assert (await second).position == 16

    asyncio.run(scenario())


def test_a_caller_that_goes_away_leaves_the_read_to_those_still_waiting() -> None:
    async def scenario() -> None:
        reader, keeper = HeldReader(12), Keeper()
        queries = VenueMenuQueries(reader, lambda: VersionsSeen(state(11)))
        leader, joiner = await leader_and_joiner(queries, keeper)
        leader.cancel()  # its client hung up
        reader.release.set()
        assert (await joiner).value == "menu of gym at 12"
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert reader.reads == [None]

    asyncio.run(scenario())


def test_a_failed_read_fails_every_request_waiting_for_it_and_the_next_one_reads_again() -> None:
    async def scenario() -> None:
        reads = ReadsInFlight()
        release = asyncio.Event()
        started: list[int] = []

        async def failing() -> str:
            started.append(1)
            await release.wait()
            raise ConnectionError("the database went away")

        waiting = [
            asyncio.create_task(reads.read("gym", failing, lambda: "from memory")) for _ in range(3)
        ]
        await settle()
        release.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert [type(o) for o in outcomes] == [ConnectionError] * 3
        assert started == [1]

        async def answering() -> str:
            return "read again"

        assert await reads.read("gym", answering, lambda: None) == "read again"

    asyncio.run(scenario())
