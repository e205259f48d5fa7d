"""An answer kept by key (projections/versions.py `Remembered`) is served from memory only
while nothing the last poll knows is newer than it, and is stamped with the newer state."""

from __future__ import annotations

from datetime import UTC, datetime

from projections.freshness import ReadState
from projections.versions import Remembered, VersionsSeen

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def state(position: int) -> ReadState:
    return ReadState(1, position, None, (1, (("0", position),)))


def seen(position: int, **versions: int) -> VersionsSeen:
    return VersionsSeen(state(position), versions)


def kept(read_at: int, version: int) -> Remembered[str]:
    memory: Remembered[str] = Remembered()
    memory.keep("k", "answer", version, state(read_at), ("Europe/Berlin",), NOW)
    return memory


def test_unchanged_since_it_was_read_it_is_served_at_the_polls_newer_position() -> None:
    assert kept(10, 8).current(seen(20, k=8), "k", NOW, None) == ("answer", state(20))


def test_changed_after_it_was_read_it_is_not_served() -> None:
    assert kept(10, 8).current(seen(20, k=15), "k", NOW, None) is None


def test_read_after_the_poll_it_is_served_at_its_own_position_until_a_newer_poll() -> None:
    memory = kept(30, 25)  # the poll at 20 knew version 15: the answer is newer than it
    assert memory.current(seen(20, k=15), "k", NOW, None) == ("answer", state(30))
    assert memory.current(seen(30, k=25), "k", NOW, None) == ("answer", state(30))
    assert memory.current(seen(40, k=35), "k", NOW, None) is None


def test_a_poll_short_of_min_position_serves_nothing() -> None:
    assert kept(10, 8).current(seen(20, k=8), "k", NOW, 21) is None
