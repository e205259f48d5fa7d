"""What the read side needs of the event store, and nothing more: its notification log.

Projections, the runner, rebuilds and status read notifications through this protocol; the
composition root (ops/) hands them the store it opened. The read side imports no store.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper


class EventSource(Protocol):
    """An event store's notification log (`recorder`) and how to decode it (`mapper`)."""

    recorder: ApplicationRecorder
    mapper: Mapper[UUID]
