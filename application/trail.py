"""One order's way through every process, as the event store tells it (`farmacy trace`).

The order's own events, and the events of its fridge about it (the reservation that was its
birth, its confirmation, release or pickup, a shortage that named it), each with the cause it
was stored with (domain/causes.py): the request and correlation ids, what caused it and which
process recorded it. Events stored before causes were recorded show none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from application.errors import NotFound
from application.store import EventStore
from domain.causes import Cause, cause_of, event_ref
from domain.fridge import Fridge
from domain.order import Order

Positions = Callable[[UUID, int], dict[int, int]]
"""version -> position of a stream's events from a version on (empty: the store cannot say)."""

PAGE = 1000
"""Fridge events read at a time, newest first, back to the order's reservation."""


@dataclass(frozen=True)
class Step:
    """One event of the order's way."""

    position: int | None  # in the store's sequence (None: the store cannot say)
    at: datetime
    stream: str  # "order" or "fridge"
    version: int
    type: str
    ref: str  # stream:version, as a reaction names its cause
    cause: Cause | None  # None: stored before causes were recorded


def order_trail(store: EventStore, order_id: str, positions: Positions) -> list[Step]:
    """The events of order `order_id` and its fridge's events about it, in store order.
    NotFound if the store knows no such order."""
    try:
        stream = Order.create_id(order_id)
    except ValueError:
        raise NotFound("order", order_id) from None
    order_events = list(store.events.get(stream))
    if order_events:
        fridge_stream = Fridge.create_id(order_events[0].fridge_id)  # type: ignore[attr-defined]
    else:  # the process manager has not opened it yet: find its birth in a fridge
        reservation = _reservation(store, order_id)
        if reservation is None:
            raise NotFound("order", order_id)
        fridge_stream = reservation.originator_id
    fridge_events = list(_fridge_events_about(store, fridge_stream, order_id))
    steps = _steps(order_events, "order", positions) + _steps(fridge_events, "fridge", positions)
    return sorted(steps, key=lambda s: (s.position is None, s.position or 0, s.at))


def about(event: Any, order_id: str) -> bool:
    """Whether a fridge's event is about the order."""
    return getattr(event, "order_id", None) == order_id or order_id in getattr(
        event, "order_ids", ()
    )


def _fridge_events_about(store: EventStore, stream: UUID, order_id: str) -> Iterator[Any]:
    """The fridge's events about the order, newest first, back to its reservation."""
    before: int | None = None
    while True:
        page = list(store.events.get(stream, lte=before, desc=True, limit=PAGE))
        for event in page:
            if about(event, order_id):
                yield event
                if isinstance(event, Fridge.MealsReserved):
                    return
        if len(page) < PAGE:
            return
        before = page[-1].originator_version - 1


def _reservation(store: EventStore, order_id: str) -> Fridge.MealsReserved | None:
    """The reservation that gave birth to the order, looked for through the whole store (only
    for an order the process manager has not opened yet)."""
    topic = get_topic(Fridge.MealsReserved)
    wanted = order_id.encode()
    # Everything the store holds now (asking also moves a reader's head up to it, where the
    # store keeps one: ops/postgres_events.py).
    head = store.recorder.max_notification_id()
    start: int | None = None
    while True:
        page = store.recorder.select_notifications(
            start, PAGE, stop=head, topics=[topic], inclusive_of_start=False
        )
        for notification in page:
            if wanted in notification.state:  # decode only what may be it
                event = store.mapper.to_domain_event(notification)
                if isinstance(event, Fridge.MealsReserved) and event.order_id == order_id:
                    return event
        if len(page) < PAGE:
            return None
        start = page[-1].id


def _steps(events: list[Any], stream: str, positions: Positions) -> list[Step]:
    if not events:
        return []
    where = positions(events[0].originator_id, min(e.originator_version for e in events))
    return [
        Step(
            position=where.get(event.originator_version),
            at=event.timestamp,
            stream=stream,
            version=event.originator_version,
            type=type(event).__qualname__,
            ref=event_ref(event),
            cause=cause_of(event),
        )
        for event in events
    ]
