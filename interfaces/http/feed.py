"""The feed for other subsystems: `GET /feed` pages, `GET /feed/live` streams (docs/feed.md).

Both read the feed read model (projections/feed.py), whose worker follows the store through
its safe head: a page never shows an event past an append still in flight, and positions only
grow. Only the subsystem and operator roles may read it.

`/feed/live` is server-sent events: each event's `id` is its position, so a client that
reconnects with `Last-Event-ID` (or `?after=`) resumes exactly after the last one it saw. It
is left out of the OpenAPI document, because a fuzzer cannot call a stream that never ends;
docs/feed.md describes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from msgspec import Struct
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from interfaces.http.auth import Role, allow
from interfaces.http.errors import problem
from interfaces.http.operations import LAG
from interfaces.http.reading import ReadSide
from interfaces.http.schemas import Read
from projections.feed import MOST_PER_PAGE, Feed, read_page, relay_statuses

FEED_READERS = allow(Role.SUBSYSTEM, Role.OPERATOR)
LIVE_POLL_SECONDS = 0.05
"""How often the live stream looks for new events when it has sent all it had."""
LIVE_HEARTBEAT_SECONDS = 15.0
"""A comment line this often on a quiet stream, so proxies keep the connection open."""

AfterPosition = Annotated[
    int, QueryParameter(ge=0, description="the position of the last event already seen")
]
PageSize = Annotated[
    int, QueryParameter(ge=1, le=MOST_PER_PAGE, description="at most this many events")
]


class IntegrationEvent(Struct, kw_only=True):
    """One integration event, version 1 (docs/feed.md lists every type and its data)."""

    id: str
    type: str
    version: int
    position: int
    occurred_at: str
    city_id: str
    venue_id: str
    fridge_id: str
    partition: int
    order_id: str | None
    data: dict[str, Any]


class FeedPage(Struct, kw_only=True):
    """Events after `after`, in commit order. `next_after`: pass it as `after` for the next
    page (it can move past positions that publish nothing). `position`: how far the feed had
    read the event store when this page was read."""

    events: list[IntegrationEvent]
    next_after: int
    position: int


def _page(read: ReadSide, after: int, limit: int) -> FeedPage:
    answer = read.read(Feed, lambda tx, view: read_page(tx, view, after, limit), None)
    events = msgspec.convert(answer.value, list[IntegrationEvent])
    if len(events) == limit:
        next_after = events[-1].position
    else:  # everything the model holds was returned: skip what published nothing
        next_after = max(after, answer.position, events[-1].position if events else 0)
    return FeedPage(events=events, next_after=next_after, position=answer.position)


def resume_from(last_event_id: str | None, after: int) -> int:
    """Where a live stream starts: after `Last-Event-ID` if the client sent one."""
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isdigit() or len(text) > 19:
        raise problem(422, "invalid Last-Event-ID", "Last-Event-ID must be a feed position")
    return int(text)


async def live_events(read: ReadSide, after: int) -> AsyncIterator[ServerSentEventMessage]:
    """Every event after `after`, then each new one as the feed gets it, forever."""
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while True:
        page = await anyio.to_thread.run_sync(_page, read, after, MOST_PER_PAGE)
        for event in page.events:
            yield ServerSentEventMessage(
                data=msgspec.json.encode(event).decode(), id=event.position, event=event.type
            )
        after = page.next_after
        if page.events:
            quiet_since = loop.time()
            continue
        if loop.time() - quiet_since > LIVE_HEARTBEAT_SECONDS:
            quiet_since = loop.time()
            yield ServerSentEventMessage(comment="still here")
        await asyncio.sleep(LIVE_POLL_SECONDS)


class FeedRoutes(Controller):
    path = "/feed"
    tags = ["feed"]
    guards = [FEED_READERS]

    @get("/", sync_to_thread=True)
    def feed(self, read: Read, after: AfterPosition = 0, limit: PageSize = 100) -> FeedPage:
        """Integration events after position `after`, in commit order, at most `limit`."""
        return _page(read, after, limit)

    @get("/live", include_in_schema=False)
    async def live(
        self,
        request: Request[Any, Any, Any],
        read: Read,
        after: AfterPosition = 0,
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=40)
        ] = None,
    ) -> ServerSentEvent:
        """Server-sent events: every integration event after `Last-Event-ID` (or `after`)."""
        return ServerSentEvent(live_events(read, resume_from(last_event_id, after)))


class RelayLag(Collector):
    """Each relay's position and lag beside the projections' (their source, read at scrape
    time): `farmacy_relay_position`, `farmacy_relay_lag_events`, `farmacy_relay_lag_seconds`."""

    def collect(self) -> Any:
        families = [
            GaugeMetricFamily(name, text, labels=["relay"])
            for name, text in (
                ("farmacy_relay_position", "Position up to which a relay has published"),
                ("farmacy_relay_lag_events", "Events in the store past the relay's position"),
                ("farmacy_relay_lag_seconds", "Age of the oldest event the relay has not passed"),
            )
        ]
        found = []
        if LAG.source is not None:
            store, read = LAG.source
            try:
                found = relay_statuses(store, read.dbs[Feed.name])
            except Exception:  # a scrape must not fail because a database is down
                found = []
        for s in found:
            relay = s.shard.removeprefix("relay:")
            families[0].add_metric([relay], s.position)
            families[1].add_metric([relay], s.lag_events)
            families[2].add_metric([relay], s.lag_seconds)
        yield from families


REGISTRY.register(RelayLag())
