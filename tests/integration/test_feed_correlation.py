"""The correlation id of the request an event came from travels with its integration event:
a `Farmacy-Correlation-Id` header on the JetStream message, never a field of the contract
(the message's body and the HTTP feed's answer are as docs/feed.md says)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import nats

from application.causes import caused_by
from domain.causes import Cause
from interfaces.feed.jetstream import CORRELATION_HEADER, STREAM
from interfaces.http.feed import IntegrationEvent
from ops.root import WriteSide
from ops.settings import Settings
from projections.feed import CORRELATION_KEY
from tests.integration.feed_rig import feed_events, feed_worker, relay_thread, wait_for
from tests.integration.test_feed_jetstream import caught_up, server, settings, side, world
from tests.integration.world import World

__all__ = ["server", "settings", "side", "world"]


async def _messages(url: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(STREAM)).state.last_seq or 0
        found = []
        for seq in range(1, last + 1):
            message = await js.get_msg(STREAM, seq=seq)
            found.append((dict(message.headers or {}), json.loads(message.data or b"")))
        return found
    finally:
        await nc.close()


def test_an_events_correlation_id_is_a_header_of_its_message_not_a_field(
    settings: Settings, side: WriteSide, world: World
) -> None:
    with caused_by(Cause("req-1", "checkout-9", "req-1", "api")):
        followed = side.ordering.place("ana", "k-1", world.fridge_id, {world.soup: 1}).order_id
    plain = side.ordering.place("ben", "k-2", world.fridge_id, {world.soup: 1}).order_id

    with feed_worker(settings, side), relay_thread(settings, side):
        wait_for("the relay has published the feed", lambda: caught_up(settings, side))
    assert settings.nats_url
    messages = asyncio.run(_messages(settings.nats_url))

    about = {
        order_id: [(headers, body) for headers, body in messages if body["order_id"] == order_id]
        for order_id in (followed, plain)
    }
    assert about[followed] and about[plain]
    assert all(h.get(CORRELATION_HEADER) == "checkout-9" for h, _ in about[followed])
    assert all(CORRELATION_HEADER not in h for h, _ in about[plain])
    assert all(CORRELATION_KEY not in body for _, body in messages)
    # The HTTP feed answers the contract's fields only.
    answered = msgspec.to_builtins(msgspec.convert(feed_events(settings), list[IntegrationEvent]))
    assert all(CORRELATION_KEY not in event for event in answered)
