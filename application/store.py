"""The event store every service appends to: one eventsourcing application, one sequence.

All aggregates live in one application so that projections follow one ordered sequence of
notifications (on KurrentDB: `$all`). Which database holds it is configuration (ops.stores).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, CanMutateAggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from application.causes import current_cause, stamp
from application.errors import NotFound
from domain.reservations import ReservationBook
from domain.shelf import Shelf

A = TypeVar("A", bound=Aggregate)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ShelfAsBatches(Transcoding):
    """A fridge's shelf in its snapshots: meal -> best-before -> units."""

    type = Shelf
    name = "fridge_shelf"

    def encode(self, obj: Shelf) -> dict[str, dict[str, int]]:
        return obj.batches

    def decode(self, data: dict[str, dict[str, int]]) -> Shelf:
        return Shelf(data)


class ReservationBookAsDicts(Transcoding):
    """A fridge's reservation book in its snapshots: open, closed, and what they hold."""

    type = ReservationBook
    name = "fridge_reservation_book"

    def encode(self, obj: ReservationBook) -> dict[str, Any]:
        return {"open": obj.open, "closed": obj.closed, "holds": obj.holds}

    def decode(self, data: dict[str, Any]) -> ReservationBook:
        return ReservationBook(open=data["open"], closed=data["closed"], holds=data["holds"])


class _Collected(ProcessingEvent[UUID]):
    """The library's collection of an append's pending events, without its two runtime
    Protocol checks per object: 45 us a save on Python 3.11 (measured), a tenth of an order's
    CPU in process. Anything but an Aggregate goes the library's way."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, Aggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


def replay(aggregate: Any, events: Iterable[DomainEventProtocol[UUID]]) -> Any:
    """The library's `project_aggregate` without its runtime Protocol assertion per event
    (23 us each on Python 3.11, more than decoding the event): every event of this store is
    an Aggregate event, which can mutate."""
    for event in events:
        aggregate = cast(CanMutateAggregate[UUID], event).mutate(aggregate)
    return aggregate


@dataclass(frozen=True)
class Turn:
    """A turn at appending to one stream."""

    waited: bool  # another process held the turn first: it writes this stream too
    newer: list[DomainEventProtocol[UUID]]  # the stream's events after the version asked


class EventStore(Application[UUID]):
    """Farmacy's events, whichever database keeps them."""

    name = "farmacy"
    env = {
        # Loaded aggregates are kept and fast-forwarded with only their newer events.
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    # A fridge that has lived long loads from its latest snapshot, not from its first event.
    # Snapshots are taken by a worker of their own (application/snapshots.py), never in a process
    # that serves customers: serialising a big fridge holds the interpreter for tens of ms,
    # which the hot-fridge benchmark saw as every queued caller's p99.
    is_snapshotting_enabled = True
    SNAPSHOT_EVERY = 500

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        # The parts a fridge's snapshot holds (Fridge class_version 3).
        transcoder.register(ShelfAsBatches())
        transcoder.register(ReservationBookAsDicts())

    def load(self, cls: type[A], kind: str, natural_id: str, stream: UUID) -> A:
        """The aggregate of `stream`, or NotFound naming it in the business's words."""
        try:
            aggregate: Aggregate = self.repository.get(stream, projector_func=replay)
        except AggregateNotFoundError:
            raise NotFound(kind, natural_id) from None
        if not isinstance(aggregate, cls):
            raise NotFound(kind, natural_id)
        return aggregate

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, step for step, collecting events the faster way (_Collected),
        each event carrying the cause of this request or reaction (application/causes.py)."""
        processing = _Collected()
        processing.collect_events(*objs, **kwargs)
        stamp(processing.events, current_cause())
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # the library's deprecated hook, kept in step
        return recordings

    def append(self, aggregate: Aggregate) -> int | None:
        """Append one aggregate's new events; the position of the last one, if any."""
        recordings = self.save(aggregate)
        return recordings[-1].notification.id if recordings else None

    def snapshot(self, stream: UUID, version: int) -> bool:
        """Record a snapshot of `stream` at `version`. False if one is there already (a
        snapshot worker that repeats itself after a crash)."""
        try:
            self.take_snapshot(stream, version=version)
        except IntegrityError:
            return False
        return True

    @contextmanager
    def turn(self, stream: UUID, after: int) -> Iterator[Turn]:
        """Take turns with other processes appending to `stream`, where the database offers a
        way (PostgreSQL: ops/postgres_events.py); elsewhere only read what is new, and
        optimistic concurrency alone decides, as it does in any case."""
        take = getattr(self.recorder, "turn", None)
        if take is None:
            yield Turn(waited=False, newer=list(self.events.get(stream, gt=after)))
            return
        with take(stream, after) as (waited, stored):
            yield Turn(waited, [self.mapper.to_domain_event(event) for event in stored])

    def position(self) -> int | None:
        """The newest position in the store: a safe read-your-writes token for a no-op.

        The newest event committed, which on PostgreSQL (ops/postgres_events.py) may lie
        above the readers' safe head while an earlier id is still in flight: a no-op's
        answer must wait for that event too, not only for what readers may read now.
        """
        recorder = cast(Any, self.recorder)
        newest = getattr(recorder, "newest_committed_id", recorder.max_notification_id)
        position: int | None = newest()
        return position
