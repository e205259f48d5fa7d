"""The event store every service appends to: one eventsourcing application, one sequence.

All aggregates live in one application so that projections follow one ordered sequence of
notifications (on KurrentDB: `$all`). Which database holds it is configuration (ops.stores).
"""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import JSONTranscoder, Transcoding

from application.errors import NotFound

A = TypeVar("A", bound=Aggregate)
log = structlog.get_logger(__name__)


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
    # Snapshots are taken by the fridge writer from the state it already holds (the library's
    # own interval snapshots reload the aggregate inside the save, on the hot path).
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

    def snapshot_if_due(self, aggregate: Aggregate, version_before: int) -> None:
        """Snapshot `aggregate` (just saved) if its new events crossed a multiple of the interval.

        A failed snapshot costs only load time later, so it is logged, never raised.
        """
        if self.snapshots is None or aggregate.version // self.SNAPSHOT_EVERY == (
            version_before // self.SNAPSHOT_EVERY
        ):
            return
        try:
            self.snapshots.put([Snapshot.take(aggregate)])
        except Exception as error:
            log.warning("snapshot_failed", stream=str(aggregate.id), error=str(error))

    def position(self) -> int | None:
        """The newest position in the store: a safe read-your-writes token for a no-op."""
        newest: int | None = cast(Any, self.recorder).max_notification_id()
        return newest
