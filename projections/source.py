"""What the read side needs of the event store, and nothing more: its notification log.

Projections, the runner, rebuilds and status read notifications through this protocol; the
composition root (ops/) hands them the store it opened. The read side imports no store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eventsourcing.persistence import Notification


class NotificationLog(Protocol):
    """The store's notifications in the order readers apply them (an `ApplicationRecorder`)."""

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...

    def max_notification_id(self) -> int | None: ...


class Decoder(Protocol):
    """What turns a stored event back into the domain's (a `Mapper`)."""

    def to_domain_event(self, stored_event: Any) -> Any: ...


class EventSource(Protocol):
    """An event store's notification log (`recorder`) and how to decode it (`mapper`)."""

    @property
    def recorder(self) -> NotificationLog: ...

    @property
    def mapper(self) -> Decoder: ...
