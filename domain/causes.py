"""What each stored event says about why it was recorded: its cause (`Cause`), kept as
metadata beside the event's fields. No aggregate reads it, and no rule may depend on it: the
application writes it (application/causes.py), projections and processes read it for their log
lines, and `farmacy trace` shows it.

In the stored event it is one key of the event's state, `metadata`: a list of the ids
(`Cause.as_metadata`). An event stored before causes were recorded has no such key and loads
as it always did (`cause_of` answers None), so nothing needs migrating: the library's mutators
pick the fields their handlers name, and ignore this one.

Correlation and causation as Marten and Emmett carry them: every event of one conversation
(an order placed, paid, made ready, picked up) shares the correlation id of the request that
began it; the causation id names what made this event happen: the request, or the event a
process reacted to (`stream:version`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METADATA = "metadata"
"""The key of the event's state that holds its cause."""


@dataclass(frozen=True, slots=True)
class Cause:
    request_id: str = ""  # the HTTP request that recorded the event (X-Request-Id)
    correlation_id: str = ""  # the conversation: the same for an order's every event
    causation_id: str = ""  # the request id, or `stream:version` of the event reacted to
    process: str = ""  # which process recorded it: api, fulfilment, expiry, ...

    def as_metadata(self) -> list[str]:
        """The event's stored metadata: [request id, correlation id, causation id, process],
        "" for one not set. A list, not an object: the store's JSON decoder calls back into
        Python for every object it reads (measured: 0.4 us an event, a tenth of decoding one),
        and every worker decodes every event. A causation id that is the request id is not
        written twice (`cause_of` reads it back): every event a request records is caused by
        it. Later fields, if any, are appended."""
        causation = "" if self.causation_id == self.request_id else self.causation_id
        return [self.request_id, self.correlation_id, causation, self.process]

    def log_ids(self) -> dict[str, str]:
        """The ids a log line about the event carries (the set ones)."""
        ids = {}
        if self.request_id:
            ids["request_id"] = self.request_id
        if self.correlation_id:
            ids["correlation_id"] = self.correlation_id
        return ids


def cause_of(event: object) -> Cause | None:
    """The cause stored with `event`; None for an event stored before causes were."""
    metadata = getattr(event, "__dict__", {}).get(METADATA)
    if not isinstance(metadata, list) or len(metadata) < 4:
        return None
    request_id, correlation_id, causation_id, process = (str(value) for value in metadata[:4])
    return Cause(request_id, correlation_id, causation_id or request_id, process)


def event_ref(event: Any) -> str:
    """How a reaction names the event that caused it: its stream and version ("" for
    something that is no stored event)."""
    stream = getattr(event, "originator_id", None)
    if stream is None:
        return ""
    return f"{stream}:{event.originator_version}"


def log_ids(event: Any) -> dict[str, str]:
    """The ids a log line about `event` carries: the request and correlation ids it was
    recorded with, and the order and fridge it names (an order's events name their order by
    their stream: an order's stream id is its order id)."""
    cause = cause_of(event)
    ids = cause.log_ids() if cause is not None else {}
    order_id = getattr(event, "order_id", None)
    if order_id is None and type(event).__qualname__.startswith("Order."):
        order_id = str(event.originator_id)
    if order_id:
        ids["order_id"] = order_id
    fridge_id = getattr(event, "fridge_id", None)
    if fridge_id:
        ids["fridge_id"] = fridge_id
    return ids
