"""Follow a few kinds of events through the store, in memory, from a position onwards.

What the price list does for meals (application/prices.py), for processes that need to know
a little of the world without a read model of their own: the expiry scheduler (which fridges
stand where) and the fridge cloud's poller (which fridges it asks about). One topic-filtered
read of the notification log per `refresh`, from where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventsourcing.utils import get_topic

from application.store import EventStore

READ_LIMIT = 1000


class Following:
    """Hands every event of `kinds`, in the store's order, to `take`; once each."""

    def __init__(
        self, store: EventStore, kinds: Sequence[type], take: Callable[[object], None]
    ) -> None:
        self.store = store
        self.topics = [get_topic(kind) for kind in kinds]
        self.take = take
        self.position = 0

    def refresh(self) -> int:
        """Take in what was recorded since the last refresh; the position reached."""
        head: int = self.store.recorder.max_notification_id() or 0
        while self.position < head:
            found = self.store.recorder.select_notifications(
                self.position + 1, READ_LIMIT, stop=head, topics=self.topics
            )
            for notification in found:
                self.take(self.store.mapper.to_domain_event(notification))
            self.position = head if len(found) < READ_LIMIT else found[-1].id
        return self.position
