"""One writer per fridge inside a process, so a popular fridge is a queue, not a retry storm.

Callers hand in a decision (a function of the fridge that calls its commands). Whoever holds
the fridge's turn takes every decision queued meanwhile, applies them in order to the fridge's
current state, and appends all their events in one save; each caller gets its own answer or
its own domain error. Callers whose decision another thread carried are woken through a
condition as soon as their batch is saved: they never wait for the next batch's save, which
is what lets the queue grow into large batches while one save is in flight.

Across processes, optimistic concurrency is the safety net: a conflict reloads the fridge
(fast-forwarding the cached copy) and decides the whole batch again. A batch that appends
nothing (only refusals and repeats) has no version check to vouch for it, so it first makes
sure no other process has appended since: a stale copy must not refuse what the store allows.

The fridge's state after a successful save stays in memory, so a hot fridge is not reloaded
between batches at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import IntegrityError

from application.retry import Backoff, on_conflict_retry
from application.store import EventStore
from domain.errors import DomainError
from domain.fridge import Fridge

R = TypeVar("R")
CONTENDED_FOR = 2.0
"""Seconds after a conflict during which a fridge is caught up with the store before each
batch: one read of its newest events, instead of conflicts that each cost a failed append
and a copy of the whole fridge."""
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decided(Generic[R]):
    """A caller's own answer: what its decision returned and the position to read after."""

    value: R
    position: int | None


@dataclass
class _Ticket:
    decide: Callable[[Fridge], Any]
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
    contended_at: float = float("-inf")  # when another process last beat this one to it

    def __post_init__(self) -> None:
        # Signalled (under `guard`) when a batch is answered or the turn is given up.
        self.settled = threading.Condition(self.guard)


@dataclass
class WriterStats:
    batches: int = 0
    decisions: int = 0
    conflicts: int = 0


class FridgeWriter:
    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = 256,
        backoff: Backoff | None = None,
        max_fridges_kept: int = 10_000,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.backoff = backoff or Backoff()
        self.max_fridges_kept = max_fridges_kept
        self.stats = WriterStats()
        self._desks: OrderedDict[str, _Desk] = OrderedDict()
        self._desks_guard = threading.Lock()

    def execute(self, fridge_id: str, decide: Callable[[Fridge], R]) -> Decided[R]:
        """Apply `decide` to the fridge, serialised with every other decision on it."""
        desk = self._desk(fridge_id)
        ticket = _Ticket(decide)
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

    def forget(self, fridge_id: str) -> None:
        """Drop the in-memory state (tests, or after an operator's manual repair)."""
        with self._desks_guard:
            desk = self._desks.get(fridge_id)
        if desk is not None:
            with desk.turn:
                desk.fridge = None

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
            if attempts > 1:
                self.stats.conflicts += 1
                desk.fridge = None  # someone else appended: start from the stored truth
                desk.contended_at = time.monotonic()
            fridge = desk.fridge
            if fridge is not None and time.monotonic() - desk.contended_at < CONTENDED_FOR:
                # Other processes write this fridge too: take in what they appended since
                # this copy was saved, rather than lose an append to a conflict and then
                # copy the whole fridge out of the cache.
                self._catch_up(fridge)
            if fridge is None:
                fridge = self._load(fridge_id)
            desk.fridge = None  # until the append succeeds, this copy is not the truth
            outcomes = [self._decide_one(fridge, ticket) for ticket in batch]
            if not fridge.pending_events:
                # Nothing to append, so no version check will vouch for these refusals and
                # repeats: make sure they were decided on the latest state.
                if self._newer_events_exist(fridge):
                    raise IntegrityError(f"fridge {fridge_id} moved on in another process")
                desk.fridge = fridge
                return None
            position = self.store.append(fridge)
            desk.fridge = fridge
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
            return ticket.decide(fridge), None
        except DomainError as refused:
            # Commands check every rule before recording anything; a refusal that recorded
            # something would let half a decision into the batch.
            if len(fridge.pending_events) != pending:
                raise AssertionError(f"{refused!r} was raised after recording events") from None
            return None, refused

    def _catch_up(self, fridge: Fridge) -> None:
        """Apply to `fridge` (clean: it holds no pending events) what was appended after it."""
        for event in self.store.events.get(fridge.id, gt=fridge.version):
            assert isinstance(event, CanMutateAggregate)  # a fridge's stream holds only these
            event.mutate(fridge)

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
