"""The event store every service appends to: one eventsourcing application, one sequence.

All aggregates live in one application so that projections follow one ordered sequence of
notifications (on KurrentDB: `$all`). Which database holds it is configuration (ops.stores).
"""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from application.errors import NotFound

A = TypeVar("A", bound=Aggregate)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


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

    def load(self, cls: type[A], kind: str, natural_id: str, stream: UUID) -> A:
        """The aggregate of `stream`, or NotFound naming it in the business's words."""
        try:
            aggregate: Aggregate = self.repository.get(stream)
        except AggregateNotFoundError:
            raise NotFound(kind, natural_id) from None
        if not isinstance(aggregate, cls):
            raise NotFound(kind, natural_id)
        return aggregate

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
