"""The notification log read once for every read model of a worker process.

`farmacy worker` runs a runner per read model as threads of one process (projections/
worker.py), and each used to read the store on its own: under a stream of orders every
model asked for the same few new events (a select, and on PostgreSQL a look at the safe head
first), and decoded each it wanted for itself. `SharedLog` keeps the newest notifications any
of them read, and the events decoded from them, so the others take theirs from memory.

Why that is safe: the store hands out notifications only up to a position below which
nothing can still appear (PostgreSQL's safe head; SQLite commits in order), so what a select
from `start` returned is every notification between `start` and the last one returned, for
good. A runner asking from inside that range is given exactly what a select would have given
it (up to its limit), only perhaps fewer of the newest: it asks again at its next step. A
runner behind what is kept reads the store itself, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification

from projections.source import Decoder, EventSource, NotificationLog

KEEP = 2_000
"""Notifications kept (a few batches of the runners' `BATCH_SIZE`, a few hundred kB)."""


class SharedLog:
    """An `EventSource` whose readers (the threads of one worker process) share reads."""

    def __init__(self, source: EventSource, keep: int = KEEP) -> None:
        self.source = source
        self.keep = keep
        self.recorder = _Reads(self)
        self.mapper = _Decoded(self)
        self._lock = threading.Lock()  # guards the kept window and the decoded events
        self._reading = threading.Lock()  # one read of the store's newest at a time
        self._after = 0  # the window holds every notification with id in (_after, _upto]
        self._upto = 0
        self._kept: list[Notification] = []
        self._events: dict[int, Any] = {}  # notification id -> its decoded event
        self.from_memory = 0  # selects answered from the window
        self.from_store = 0

    def _from_window(self, start: int, limit: int) -> list[Notification] | None:
        """The notifications after `start` the window holds (None: it cannot say)."""
        with self._lock:
            if not self._after <= start < self._upto:
                return None
            found = [n for n in self._kept if n.id > start][:limit]
            self.from_memory += 1
            return found

    def select_after(self, start: int, limit: int) -> Sequence[Notification]:
        found = self._from_window(start, limit)
        if found is not None:
            return found
        if start < self._after:  # a runner behind the window reads the store itself
            self.from_store += 1
            return self.source.recorder.select_notifications(
                start or None, limit, inclusive_of_start=False
            )
        with self._reading:  # the others at the head wait for this read, then share it
            found = self._from_window(start, limit)
            if found is not None:
                return found
            read = self.source.recorder.select_notifications(
                start or None, max(limit, 1), inclusive_of_start=False
            )
            self.from_store += 1
            if read:
                self._extend(start, read)
            return read[:limit]

    def _extend(self, start: int, read: Sequence[Notification]) -> None:
        with self._lock:
            if start != self._upto:  # not contiguous with the window: start over from here
                self._kept, self._after, self._events = [], start, {}
            self._kept.extend(read)
            self._upto = read[-1].id
            if len(self._kept) > self.keep:
                dropped, self._kept = self._kept[: -self.keep], self._kept[-self.keep :]
                self._after = dropped[-1].id
                for notification in dropped:
                    self._events.pop(notification.id, None)

    def decode(self, notification: Notification) -> Any:
        with self._lock:
            found = self._events.get(notification.id)
            kept = self._after < notification.id <= self._upto
        if found is not None:
            return found
        event = self.source.mapper.to_domain_event(notification)
        if kept:
            with self._lock:
                if self._after < notification.id <= self._upto:
                    self._events[notification.id] = event
        return event


class _Reads(NotificationLog):
    """The recorder as the runners use it: selects after a position go through the window."""

    def __init__(self, log: SharedLog) -> None:
        self.log = log

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if stop is None and not topics and not inclusive_of_start:
            return self.log.select_after(start or 0, limit)
        return self.log.source.recorder.select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )

    def max_notification_id(self) -> int | None:
        return self.log.source.recorder.max_notification_id()


class _Decoded(Decoder):
    """The mapper as the runners use it: an event decoded once for every model."""

    def __init__(self, log: SharedLog) -> None:
        self.log = log

    def to_domain_event(self, stored_event: Any) -> Any:
        if isinstance(stored_event, Notification):
            return self.log.decode(stored_event)
        return self.log.source.mapper.to_domain_event(stored_event)
