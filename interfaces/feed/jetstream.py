"""Where the feed lives on NATS JetStream: its stream, subjects and buckets (docs/feed.md).

- Stream `FARMACY_FEED`, subjects `farmacy.feed.<city>.<partition>`: every integration event,
  in commit order; the partition is a stable hash of the fridge (projections/integration.py),
  so one fridge's events stay in order in one partition, and a consumer can take one city
  (`farmacy.feed.<city>.*`) or one partition (`farmacy.feed.*.<k>`).
- Key-value bucket `farmacy_reservations` (history 1: JetStream's compacted topic): the
  latest status of each reservation, by order id.
- Key-value buckets `farmacy_feed_leases` and `farmacy_feed_progress`: which consumer of a
  partition is active, and how far it got (interfaces/feed/consumer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

STREAM = "FARMACY_FEED"
SUBJECT_PREFIX = "farmacy.feed"
RESERVATIONS = "farmacy_reservations"
LEASES = "farmacy_feed_leases"
PROGRESS = "farmacy_feed_progress"

POSITION_HEADER = "Farmacy-Position"
"""The event store position of an integration event, on each message of the stream."""
MSG_ID_HEADER = "Nats-Msg-Id"
CORRELATION_HEADER = "Farmacy-Correlation-Id"
"""The correlation id of the request the event came from (docs/operations.md, "Follow one
order"), where it was recorded with one: a header, not a field of the contract."""
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"

DUPLICATE_WINDOW = 120.0
"""Seconds the stream remembers message ids (JetStream's default). The relay never relies on
it to avoid duplicates across a crash: it resumes from the stream's last message."""


@dataclass(frozen=True)
class Layout:
    """How the stream and buckets are made: replicas (3 on a cluster) and the duplicate window."""

    replicas: int = 1
    duplicate_window: float = DUPLICATE_WINDOW


def subject(city_id: str, partition: int) -> str:
    return f"{SUBJECT_PREFIX}.{city_id}.{partition}"


def reservation_key(order_id: str) -> str:
    """A KV key for an order id (KV keys allow letters, digits, `-`, `_`, `=`, `/`, `.`)."""
    return "".join(c if c.isalnum() or c in "-_=" else "_" for c in order_id)


async def connect(url: str, name: str) -> Client:
    """A connection that keeps trying to reconnect, for as long as the process lives; `url`
    may list several servers of a cluster, separated by commas."""
    return await nats.connect(
        [server.strip() for server in url.split(",") if server.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        connect_timeout=2,
    )


async def ensure_stream(js: JetStreamContext, layout: Layout) -> None:
    """Create the feed's stream if it is missing (an existing one is left as it is)."""
    config = StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        storage=StorageType.FILE,
        num_replicas=layout.replicas,
        duplicate_window=layout.duplicate_window,
    )
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:  # another process made it meanwhile
            await js.stream_info(STREAM)


async def bucket(
    js: JetStreamContext, name: str, layout: Layout, ttl: float | None = None
) -> KeyValue:
    """Key-value bucket `name`, created with one value per key if it is missing."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=name,
                history=1,
                ttl=ttl,
                replicas=layout.replicas,
                storage=StorageType.FILE,
            )
        )
