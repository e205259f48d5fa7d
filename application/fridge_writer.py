"""One writer per fridge inside a process, so a popular fridge is a queue, not a retry storm.

Callers hand in a decision (a function of the fridge that calls its commands). Whoever holds
the fridge's turn takes every decision queued meanwhile, applies them in order to the fridge's
current state, and appends all their events in one save; each caller gets its own answer or
its own domain error. Callers whose decision another thread carried are woken through a
condition as soon as their batch is saved: they never wait for the next batch's save, which
is what lets the queue grow into large batches while one save is in flight.

Across processes, optimistic concurrency is the safety net: a conflict starts again from the
stored truth and decides the whole batch again. For a while after a conflict the writer keeps
a second copy of the fridge exactly as stored (`_Desk.stored`), moved on by every event
appended or caught up, so that a lost append starts again from a copy of it; otherwise it
reloads (fast-forwarding the aggregate cache's copy). A fridge that two busy processes fight
over is then written in turns (`EventStore.turn`: on PostgreSQL an advisory lock per fridge,
held around the catch-up read and the append), so the two processes alternate instead of
one losing batch after batch until its retry budget runs out. A batch that appends nothing
(only refusals and repeats) has no version check to vouch for it, so it first makes sure no
other process has appended since: a stale copy must not refuse what the store allows.

The fridge's state after a successful save stays in memory, so a hot fridge is not reloaded
between batches at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

import structlog
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError

from application.causes import current_cause, stamp
from application.retry import Backoff, on_conflict_retry
from application.store import EventStore, replay
from domain.causes import Cause
from domain.errors import DomainError
from domain.fridge import Fridge

R = TypeVar("R")
CONTENDED_FOR = 2.0
"""Seconds after a conflict during which a fridge is caught up with the store before each
batch: one read of its newest events, instead of conflicts that each cost a failed append
and a copy of the whole fridge."""
TURNS_FOR = 2.0
"""A fridge that lost TURNS_AFTER conflicts within FOUGHT_WITHIN seconds is fought over: its
batches then take turns with other processes (EventStore.turn) for as long as they keep
finding the turn taken, and for this many seconds after."""
TURNS_AFTER = 5
FOUGHT_WITHIN = 1.0
"""A fridge two processes both write now and then loses an append every second or two and
only catches up, without turns: a turn costs a lock and a pipeline on each side of the
decision, and a lost append restarts from the stored copy. A fridge both processes are busy
on loses several a second (measured with two processes, 32 callers: 11 a second on one
fridge, under 1 a second on each of 100)."""
STORED_FOR = 60.0
"""Seconds after a conflict during which the writer keeps a second, stored copy of a fridge
in step (`_Desk.stored`): fridges two processes share lose an append every second or two."""
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decided(Generic[R]):
    """A caller's own answer: what its decision returned and the position to read after."""

    value: R
    position: int | None


@dataclass
class _Ticket:
    decide: Callable[[Fridge], Any]
    cause: Cause | None  # its caller's: the events it decides carry it, whoever appends them
    done: bool = False
    value: Any = None
    error: BaseException | None = None
    position: int | None = None


@dataclass
class _Desk:
    """Everything one process knows about one fridge's writes."""

    turn: threading.Lock = field(default_factory=threading.Lock)  # held while deciding
    guard: threading.Lock = field(default_factory=threading.Lock)  # guards `queue`
    queue: list[_Ticket] = field(default_factory=list)
    fridge: Fridge | None = None  # the state after this process's last successful append
    # While contended: the fridge exactly as stored at its version, never decided on. It
    # takes in every event this process appends or catches up, so a lost append starts
    # again from a copy of it instead of a reload from the aggregate cache, which lags by
    # every event since the last conflict (measured: a fifth of an order's CPU when two
    # processes share the same 100 fridges).
    stored: Fridge | None = None
    contended_at: float = float("-inf")  # when another process last beat this one to it
    turns_at: float = float("-inf")  # when this fridge last needed turns between processes
    conflicts: deque[float] = field(default_factory=deque)  # the latest few, oldest first

    def __post_init__(self) -> None:
        # Signalled (under `guard`) when a batch is answered or the turn is given up.
        self.settled = threading.Condition(self.guard)


@dataclass
class WriterStats:
    batches: int = 0
    decisions: int = 0
    conflicts: int = 0
    turns: int = 0  # attempts made in a turn taken with other processes (EventStore.turn)


class FridgeWriter:
    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = 256,
        backoff: Backoff | None = None,
        max_fridges_kept: int = 10_000,
        turns_after: int = TURNS_AFTER,
    ) -> None:
        self.store = store
        self.turns_after = turns_after
        self.max_batch = max_batch
        self.backoff = backoff or Backoff()
        self.max_fridges_kept = max_fridges_kept
        self.stats = WriterStats()
        self._desks: OrderedDict[str, _Desk] = OrderedDict()
        self._desks_guard = threading.Lock()

    def execute(self, fridge_id: str, decide: Callable[[Fridge], R]) -> Decided[R]:
        """Apply `decide` to the fridge, serialised with every other decision on it."""
        desk = self._desk(fridge_id)
        ticket = _Ticket(decide, current_cause())
        with desk.guard:
            desk.queue.append(ticket)
        while not ticket.done:
            if desk.turn.acquire(blocking=False):
                try:
                    self._take_turn(fridge_id, desk, ticket)
                finally:
                    desk.turn.release()
                    with desk.settled:
                        desk.settled.notify_all()  # someone waiting may take the turn now
            else:
                with desk.settled:
                    while not ticket.done and desk.turn.locked():
                        desk.settled.wait()
        if ticket.error is not None:
            raise ticket.error
        return Decided(ticket.value, ticket.position)

    def waiting(self, fridge_id: str | None = None) -> int:
        """Decisions queued for a fridge's turn (for every fridge without `fridge_id`): how
        deep a popular fridge's queue runs (/metrics: farmacy_fridge_decisions_waiting)."""
        with self._desks_guard:
            desks = (
                list(self._desks.values()) if fridge_id is None else [self._desks.get(fridge_id)]
            )
        return sum(len(desk.queue) for desk in desks if desk is not None)

    def forget(self, fridge_id: str) -> None:
        """Drop the in-memory state (tests, or after an operator's manual repair)."""
        with self._desks_guard:
            desk = self._desks.get(fridge_id)
        if desk is not None:
            with desk.turn:
                desk.fridge = desk.stored = None

    def _take_turn(self, fridge_id: str, desk: _Desk, mine: _Ticket) -> None:
        """Decide queued batches, oldest first, until this caller's own is answered."""
        while not mine.done:
            with desk.guard:
                batch = desk.queue[: self.max_batch]
                del desk.queue[: self.max_batch]
            self._decide_batch(fridge_id, desk, batch)
            with desk.settled:
                desk.settled.notify_all()

    def _decide_batch(self, fridge_id: str, desk: _Desk, batch: list[_Ticket]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        attempts = 0

        def attempt() -> int | None:
            nonlocal outcomes, attempts
            attempts += 1
            now = time.monotonic()
            if attempts > 1:
                self.stats.conflicts += 1
                desk.fridge = None  # someone else appended: start from the stored truth
                desk.contended_at = now
                desk.conflicts.append(now)
                while len(desk.conflicts) > self.turns_after:
                    desk.conflicts.popleft()
                fought_over = now - desk.conflicts[0] < FOUGHT_WITHIN
                if len(desk.conflicts) == self.turns_after and fought_over:
                    desk.turns_at = now  # take turns from now on
            contended = now - desk.contended_at < CONTENDED_FOR
            turns = now - desk.turns_at < TURNS_FOR
            fridge, desk.fridge = desk.fridge, None  # until the append succeeds, no copy is
            if fridge is None:  # the truth
                fridge = self._load(fridge_id) if desk.stored is None else deepcopy(desk.stored)
            if now - desk.contended_at >= STORED_FOR:
                desk.stored = None  # long quiet again: one copy is enough
            elif desk.stored is None:
                desk.stored = deepcopy(fridge)
            if not turns:
                if contended:
                    take_in(fridge, self.store.events.get(fridge.id, gt=fridge.version))
                return decide_and_append(fridge)
            # Fought over: take turns with the other processes where the store can, and take
            # in what they appended since this copy was saved (read in the same round trip).
            self.stats.turns += 1
            with self.store.turn(fridge.id, fridge.version) as turn:
                if turn.waited:
                    desk.turns_at = time.monotonic()  # both are busy on it: keep taking turns
                take_in(fridge, turn.newer)
                return decide_and_append(fridge)

        def take_in(fridge: Fridge, newer: Iterable[DomainEventProtocol[UUID]]) -> None:
            """Apply to `fridge` (clean: no pending events) what was appended after it, and
            to the stored copy, which is at the same version."""
            events = list(newer)
            replay(fridge, events)
            if desk.stored is not None:
                replay(desk.stored, events)

        def decide_and_append(fridge: Fridge) -> int | None:
            nonlocal outcomes
            outcomes = [self._decide_one(fridge, ticket) for ticket in batch]
            if not fridge.pending_events:
                # Nothing to append, so no version check will vouch for these refusals and
                # repeats: make sure they were decided on the latest state.
                if self._newer_events_exist(fridge):
                    raise IntegrityError(f"fridge {fridge_id} moved on in another process")
                desk.fridge = fridge
                return None
            appending = list(fridge.pending_events)
            position = self.store.append(fridge)
            desk.fridge = fridge
            if desk.stored is not None:
                replay(desk.stored, appending)
            return position

        try:
            position = on_conflict_retry(f"fridge {fridge_id}", attempt, self.backoff)
        except BaseException as failure:  # NotFound, TooBusy, store down: everyone hears it
            for ticket in batch:
                ticket.error, ticket.done = failure, True
            if not isinstance(failure, Exception):
                raise  # KeyboardInterrupt and friends go on up, after every caller has an answer
            return
        self.stats.batches += 1
        self.stats.decisions += len(batch)
        if position is None:  # every decision was a repeat or refused: nothing appended
            position = self.store.position()
        for ticket, (value, error) in zip(batch, outcomes, strict=True):
            ticket.value, ticket.error, ticket.position = value, error, position
            ticket.done = True

    @staticmethod
    def _decide_one(fridge: Fridge, ticket: _Ticket) -> tuple[Any, DomainError | None]:
        pending = len(fridge.pending_events)
        try:
            value = ticket.decide(fridge)
            stamp(fridge.pending_events[pending:], ticket.cause)
            return value, None
        except DomainError as refused:
            # Commands check every rule before recording anything; a refusal that recorded
            # something would let half a decision into the batch.
            if len(fridge.pending_events) != pending:
                raise AssertionError(f"{refused!r} was raised after recording events") from None
            return None, refused

    def _newer_events_exist(self, fridge: Fridge) -> bool:
        newer = self.store.recorder.select_events(fridge.id, gt=fridge.version, limit=1)
        return len(newer) > 0

    def _load(self, fridge_id: str) -> Fridge:
        return self.store.load(Fridge, "fridge", fridge_id, Fridge.create_id(fridge_id))

    def _desk(self, fridge_id: str) -> _Desk:
        with self._desks_guard:
            desk = self._desks.get(fridge_id)
            if desk is None:
                desk = self._desks[fridge_id] = _Desk()
                self._evict_idle()
            else:
                self._desks.move_to_end(fridge_id)
            return desk

    def _evict_idle(self) -> None:
        """Keep at most `max_fridges_kept` fridges in memory, dropping the least recent idle."""
        excess = len(self._desks) - self.max_fridges_kept
        for fridge_id in list(self._desks)[:excess]:
            desk = self._desks[fridge_id]
            if not desk.queue and not desk.turn.locked():
                del self._desks[fridge_id]
