"""The cause of what a request or a process records (domain/causes.py), from the edge that
knows it to the events it appends.

The HTTP request (interfaces/http/telemetry.py) or the process reacting to an event
(application/fulfilment_runner.py) says what the cause is for everything it does
(`caused_by`); the store writes it onto each event it appends (`EventStore.save`), and the
fridge's writer onto each caller's own events, since one append carries several callers'
decisions (application/fridge_writer.py). The domain never sees it: like the clock, it comes
from the edge with the command, and no aggregate reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from domain.causes import METADATA, Cause, cause_of, event_ref

_CURRENT: ContextVar[Cause | None] = ContextVar("farmacy_cause", default=None)


def current_cause() -> Cause | None:
    """The cause of whatever this request or reaction records, if one was given."""
    return _CURRENT.get()


@contextmanager
def caused_by(cause: Cause | None) -> Iterator[None]:
    """Everything recorded inside carries `cause` (None: no cause, as before)."""
    token = _CURRENT.set(cause)
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextmanager
def joining(correlation_id: str | None) -> Iterator[None]:
    """Inside, what is recorded joins the conversation `correlation_id` (an order's), if the
    current request began none of its own: one that brought no X-Correlation-Id, whose
    correlation id is its request id, such as the payment processor's webhook. Its request
    id and causation stay the request's; a caller's own correlation id is kept."""
    cause = _CURRENT.get()
    if not correlation_id or cause is None or cause.correlation_id != cause.request_id:
        yield
        return
    with caused_by(replace(cause, correlation_id=correlation_id)):
        yield


def stamp(events: Iterable[Any], cause: Cause | None) -> None:
    """Write `cause` onto each of `events` not stamped already (the caller who decided an
    event stamps it first; the append's own cause fills in the rest)."""
    if cause is None:
        return
    metadata: list[str] | None = None
    for event in events:
        state = event.__dict__
        if METADATA not in state:
            if metadata is None:
                metadata = cause.as_metadata()
            state[METADATA] = metadata


def reacting_to(event: Any, process: str) -> Cause:
    """The cause of what a process records in reaction to `event`: the event's conversation
    (its correlation id; an old event without one starts its own, named after it), caused by
    the event itself."""
    ref = event_ref(event)
    if not ref:
        return Cause(process=process)
    before = cause_of(event)
    correlation = before.correlation_id if before is not None and before.correlation_id else ref
    return Cause(correlation_id=correlation, causation_id=ref, process=process)
