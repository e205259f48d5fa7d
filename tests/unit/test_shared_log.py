"""A worker process's runners read the notification log once for all of them
(projections/shared_log.py): each gets what the store would have given it, never a
notification twice nor one skipped, and the store is asked far less often."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.shared_log import SharedLog


class Log:
    """A store's notification log in memory: ids with gaps (rolled-back appends)."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.selects = 0
        self.decoded = 0
        self.recorder = self
        self.mapper = self

    def append(self, count: int, gap: int = 0) -> None:
        last = self.notifications[-1].id if self.notifications else 0
        for n in range(count):
            new_id = last + 1 + gap + n
            self.notifications.append(Notification("s", new_id, "topic", b"", new_id))
        return None

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        self.selects += 1
        first = (start or 0) + (0 if inclusive_of_start else 1)
        return [n for n in self.notifications if n.id >= first][:limit]

    def max_notification_id(self) -> int | None:
        return self.notifications[-1].id if self.notifications else None

    def to_domain_event(self, stored: Any) -> Any:
        self.decoded += 1
        return ("event", stored.id)


def test_readers_at_the_head_share_one_read_and_one_decoding() -> None:
    store = Log()
    store.append(10)
    shared = SharedLog(store)
    answers = [shared.recorder.select_notifications(0, 500, inclusive_of_start=False)]
    answers += [shared.recorder.select_notifications(0, 500, inclusive_of_start=False)]
    answers += [shared.recorder.select_notifications(4, 3, inclusive_of_start=False)]
    assert [[n.id for n in a] for a in answers] == [list(range(1, 11))] * 2 + [[5, 6, 7]]
    assert store.selects == 1
    events = [shared.mapper.to_domain_event(n) for a in answers for n in a]
    assert events[:10] == [("event", i) for i in range(1, 11)]
    assert store.decoded == 10  # each event decoded once, whoever asked


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 7), st.integers(0, 4)), max_size=60))
def test_every_reader_gets_exactly_the_log_in_order(steps: list[tuple[int, int, int]]) -> None:
    """Four readers at their own pace, appends (with gaps) between their reads: each reader's
    notifications, put together, are the log's, in order, none twice, none skipped."""
    store = Log()
    shared = SharedLog(store, keep=3)
    positions = [0, 0, 0, 0]
    seen: list[list[int]] = [[], [], [], []]
    rng = random.Random(len(steps))
    for reader, limit, appended in steps:
        if appended:
            store.append(appended, gap=rng.choice((0, 0, 1)))
        got = shared.recorder.select_notifications(
            positions[reader], limit, inclusive_of_start=False
        )
        assert len(got) <= limit
        if got:
            positions[reader] = got[-1].id
        seen[reader] += [n.id for n in got]
    for reader in range(4):  # then each reads to the end
        while got := shared.recorder.select_notifications(
            positions[reader], 5, inclusive_of_start=False
        ):
            positions[reader] = got[-1].id
            seen[reader] += [n.id for n in got]
        assert seen[reader] == [n.id for n in store.notifications]
