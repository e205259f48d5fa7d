"""The safe head against a model of PostgreSQL's transaction ids, snapshots and sequence.

Writers pin an xid, take ids from the sequence, then commit or roll back, in any interleaving;
readers look (one snapshot), and when they meet a gap take an xid of their own as the bound
and look again, as ParallelAppendRecorder.safe_head does. The head must never pass an id
whose transaction is still running, and must reach the newest id once nothing is running.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ops.postgres_events import Look, SafeHead


@dataclass
class Server:
    """Enough of PostgreSQL: xids in order, a sequence, snapshots (xmin, xmax, running)."""

    next_xid: int = 100
    next_id: int = 1
    latest_completed: int = 99
    running: set[int] = field(default_factory=set)
    committed: set[int] = field(default_factory=set)
    rows: dict[int, int] = field(default_factory=dict)  # id -> xid

    def pin(self) -> int:
        xid, self.next_xid = self.next_xid, self.next_xid + 1
        self.running.add(xid)
        return xid

    def take_id(self, xid: int) -> int:
        notification_id, self.next_id = self.next_id, self.next_id + 1
        self.rows[notification_id] = xid
        return notification_id

    def end(self, xid: int, commit: bool) -> None:
        self.running.discard(xid)
        if commit:
            self.committed.add(xid)
        self.latest_completed = max(self.latest_completed, xid)

    def look(self, above: int, window: int = 1000) -> Look:
        xmax = self.latest_completed + 1
        in_progress = {xid for xid in self.running if xid < xmax}
        xmin = min(in_progress, default=xmax)
        visible = sorted(n for n, xid in self.rows.items() if xid in self.committed)
        return Look(
            xmin=xmin,
            top=max(visible, default=None),
            ids=[n for n in visible if n > above][:window],
        )

    def reader_xid(self) -> int:
        xid = self.pin()
        self.end(xid, commit=True)
        return xid

    def pending_ids(self) -> set[int]:
        return {n for n, xid in self.rows.items() if xid in self.running}


def read(server: Server, head: SafeHead, window: int = 1000) -> int:
    """What ParallelAppendRecorder.safe_head does, against the model."""
    look = server.look(head.final, window)
    if head.see(look):
        head.pin(look, server.reader_xid())
        head.see(server.look(head.final, window))
    return head.final


ACTIONS = st.sampled_from(["begin", "take", "commit", "roll back", "read"])


@settings(max_examples=400)
@given(data=st.data(), window=st.integers(1, 5))
def test_the_head_never_passes_an_id_still_in_flight(data: st.DataObject, window: int) -> None:
    server, head = Server(), SafeHead()
    writers: list[int] = []  # pinned xids, still running
    for _ in range(data.draw(st.integers(1, 60))):
        action = data.draw(ACTIONS)
        if action == "begin" or not writers:
            writers.append(server.pin())
        elif action == "take":
            server.take_id(data.draw(st.sampled_from(writers)))
        elif action in ("commit", "roll back"):
            xid = data.draw(st.sampled_from(writers))
            writers.remove(xid)
            server.end(xid, commit=action == "commit")
        final = read(server, head, window)
        assert all(final < n for n in server.pending_ids()), "passed an id still in flight"
    for xid in writers:
        server.end(xid, commit=data.draw(st.booleans()))
    for _ in range(2 * (server.next_id // window + 2)):
        read(server, head, window)
    newest = max((n for n, xid in server.rows.items() if xid in server.committed), default=0)
    assert head.final == newest, "once nothing runs, the head reaches the newest event"


def test_a_bound_from_the_snapshot_xmax_would_skip_an_id_in_flight() -> None:
    """Why the reader takes an xid of its own: xmax is only "latest completed + 1".

    Y pins xid 100, X pins 101; X takes id 1, Y takes id 2 and commits. A snapshot then has
    xmax 101 and nobody in progress below it, so X (101) is invisible but unlisted. Taking
    xmax(S) = 101 as the bound, a later snapshot still shows xmin 101 >= 101 while X runs.
    """
    server = Server()
    y, x = server.pin(), server.pin()
    server.take_id(x)
    server.take_id(y)
    server.end(y, commit=True)
    first = server.look(0)
    naive_bound = server.latest_completed + 1  # xmax of that snapshot
    later = server.look(0)
    assert later.xmin >= naive_bound, "the naive test would call id 1 final"
    assert 1 in server.pending_ids(), "while X, which holds id 1, is still running"

    head = SafeHead()
    assert read(server, head) == 0
    assert first.top == 2
    server.end(x, commit=True)
    assert read(server, head) == 2


def test_a_contiguous_run_needs_no_bound() -> None:
    server, head = Server(), SafeHead()
    xid = server.pin()
    for _ in range(3):
        server.take_id(xid)
    server.end(xid, commit=True)
    before = server.next_xid
    assert read(server, head) == 3
    assert server.next_xid == before, "no xid spent when nothing is missing"
