"""The relay (`farmacy relay`): every integration event of the feed into JetStream, once each.

It reads the feed read model (projections/feed.py) in commit order and publishes each event on
`farmacy.feed.<city>.<partition>`, with the event's id as `Nats-Msg-Id`, its position in a
header, and `Nats-Expected-Last-Sequence` set to the sequence the stream must have before it;
the correlation id of the request it came from, if any, in `Farmacy-Correlation-Id`.

Why nothing is published twice, even after a pause longer than the duplicate window: the relay
never trusts a checkpoint of its own. It starts, and starts again after any failure, from the
stream's last message (its position header says which event it was) and publishes the next
one expecting exactly that sequence. A message the stream already holds is refused (a
duplicate id inside the window, or a sequence that moved on), so the relay asks the stream
again. And why nothing is lost: a message is accepted only right after the one before it, so
the stream can have no gap, however a pipelined batch fails. Two relays running at once are
therefore safe too (each refuses the other's sequence and re-reads); one is enough.

Before each batch it puts the latest status of each order it touches in the key-value bucket
`farmacy_reservations` (one value per key: JetStream's compacted topic). A crash between the
two leaves the bucket ahead of the stream; publishing the batch again writes the same values.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge

from interfaces.feed.jetstream import (
    CORRELATION_HEADER,
    EXPECTED_LAST_SEQUENCE,
    MSG_ID_HEADER,
    POSITION_HEADER,
    RESERVATIONS,
    STREAM,
    Layout,
    bucket,
    connect,
    ensure_stream,
    reservation_key,
    subject,
)
from projections.feed import CORRELATION_KEY
from projections.integration import ORDER_STATUS

log = structlog.get_logger(__name__)

ReadPage = Callable[[int, int], tuple[list[dict[str, Any]], int]]
"""Events after a position (at most a number of them), and where the next page starts."""

BATCH = 1000
IDLE_SECONDS = 0.05
RETRY_SECONDS = 0.2
MARK_IDLE_SECONDS = 1.0
"""How often an idle relay says it is alive (status shows it stopped after 5 s without)."""
ACK_SECONDS = 10.0
"""The longest a batch waits for the stream's acknowledgements before re-reading the stream."""
TROUBLE = (nats.errors.Error, asyncio.TimeoutError, OSError)
"""What a server going away looks like to the relay: re-read the stream and go on."""

# On the relay's metrics port (ops/metrics.py). Its lag against the store is on the API's
# /metrics (farmacy_relay_lag_events, from the relay's mark in the feed model); here is how far
# it is behind the feed model it reads, which the relay knows without asking the store.
PUBLISHED = Counter("farmacy_relay_published", "Integration events published into JetStream")
REREADS = Counter(
    "farmacy_relay_rereads", "Times the relay re-read the stream after a server's trouble"
)
RELAYED_POSITION = Gauge("farmacy_relay_relayed_position", "Position of the last event published")
BEHIND = Gauge(
    "farmacy_relay_behind_events",
    "Positions between the last event published and the newest the feed model holds (at its "
    "last read: at least that many when a page was full)",
)


@dataclass(frozen=True)
class Resume:
    position: int  # the last event the stream holds (0: none)
    sequence: int  # the stream's last sequence


async def resume(js: JetStreamContext) -> Resume:
    """Where the stream stands: its last message's event position and sequence."""
    info = await js.stream_info(STREAM)
    last = info.state.last_seq or 0
    if last == 0:
        return Resume(0, 0)
    message = await js.get_msg(STREAM, seq=last)
    headers = message.headers or {}
    if POSITION_HEADER in headers:
        return Resume(int(headers[POSITION_HEADER]), last)
    return Resume(int(json.loads(message.data or b"{}")["position"]), last)


def reservation_status(event: dict[str, Any]) -> bytes | None:
    """The compacted bucket's value after `event`, if it is about an order."""
    status = ORDER_STATUS.get(event["type"])
    if status is None or not event.get("order_id"):
        return None
    kept = ("order_id", "fridge_id", "venue_id", "city_id", "position", "occurred_at")
    return json.dumps(
        {"status": status, "event_id": event["id"], **{k: event[k] for k in kept}},
        sort_keys=True,
    ).encode()


async def publish(js: JetStreamContext, events: list[dict[str, Any]], sequence: int) -> int:
    """Publish `events` after stream sequence `sequence` (statuses first); the new sequence.
    Raises what the server answered if any was refused."""
    pending = []
    for event in events:
        status = reservation_status(event)
        if status is not None:
            key = reservation_key(event["order_id"])
            pending.append(await js.publish_async(f"$KV.{RESERVATIONS}.{key}", status))
    for offset, event in enumerate(events):
        headers = {
            MSG_ID_HEADER: event["id"],
            POSITION_HEADER: str(event["position"]),
            EXPECTED_LAST_SEQUENCE: str(sequence + offset),
        }
        correlation_id = event.pop(CORRELATION_KEY, None)  # a header, not the contract's
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        body = json.dumps(event, sort_keys=True).encode()
        where = subject(event["city_id"], event["partition"])
        pending.append(await js.publish_async(where, body, headers=headers))
    try:
        acks = await asyncio.wait_for(asyncio.gather(*pending), ACK_SECONDS)
    finally:
        for future in pending:  # unanswered ones hold a slot of the client's until cancelled
            future.cancel()
    duplicates = [ack for ack in acks[-len(events) :] if ack.duplicate]
    if duplicates:  # the stream held some already: where it stands is not where we thought
        raise nats.errors.Error(f"{len(duplicates)} of the batch were in the stream already")
    return sequence + len(events)


async def relay(
    url: str,
    read_page: ReadPage,
    mark: Callable[[int], None],
    stop: threading.Event,
    layout: Layout | None = None,
    batch: int = BATCH,
) -> None:
    """Publish the feed into JetStream at `url` until `stop`."""
    layout = layout or Layout()
    nc = await connect(url, "farmacy-relay")
    try:
        js = nc.jetstream(timeout=5)
        at: Resume | None = None
        after = 0
        loop = asyncio.get_running_loop()
        marked = loop.time()
        while not stop.is_set():
            try:
                if at is None:
                    await ensure_stream(js, layout)
                    await bucket(js, RESERVATIONS, layout)
                    at = await resume(js)
                    after = at.position
                    log.info("relay resumes", position=at.position, sequence=at.sequence)
                events, next_after = await asyncio.to_thread(read_page, after, batch)
                newest = events[-1]["position"] if events else next_after  # at least
                BEHIND.set(max(0, newest - after))
                if not events:
                    if next_after > after or loop.time() - marked > MARK_IDLE_SECONDS:
                        after = max(after, next_after)
                        await asyncio.to_thread(mark, after)
                        marked = loop.time()
                    await asyncio.sleep(IDLE_SECONDS)
                    continue
                sequence = await publish(js, events, at.sequence)
                at = Resume(events[-1]["position"], sequence)
                after = at.position
                PUBLISHED.inc(len(events))
                RELAYED_POSITION.set(after)
                await asyncio.to_thread(mark, after)
                marked = loop.time()
            except TROUBLE as error:
                REREADS.inc()
                log.warning("relay re-reads the stream", error=str(error) or type(error).__name__)
                at = None
                await asyncio.sleep(RETRY_SECONDS)
    finally:
        await nc.close()


def run_relay(
    url: str,
    read_page: ReadPage,
    mark: Callable[[int], None],
    stop: threading.Event,
    layout: Layout | None = None,
) -> None:
    """The relay in this thread, on an event loop of its own."""
    asyncio.run(relay(url, read_page, mark, stop, layout))
