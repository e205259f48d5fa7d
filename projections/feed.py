"""The feed: every integration event (projections/integration.py) in commit order, one row each.

A read model like the others: its worker follows the event store through the store's safe
head (on PostgreSQL it never passes an append still in flight), writes each integration event
in the same transaction as its checkpoint, and so holds each exactly once. `GET /feed` pages
through its rows; the NATS relay publishes them. Unsharded: it is one ordered log.

It remembers where each fridge's and each order's stream is (fridge, venue, city), because
their later events carry only the stream's id.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from domain.causes import cause_of
from domain.fridge import Fridge
from domain.order import Order
from projections.database import Database, Tx
from projections.freshness import WAIT_TIMEOUT, Answer, answer
from projections.integration import CONTRACT, Where, integration_event
from projections.projection import Projection, Shard, View, now_iso
from projections.source import EventSource
from projections.status import STALE_AFTER, ShardStatus
from projections.status import _lag_seconds as lag_seconds

MOST_PER_PAGE = 1000
CORRELATION_KEY = "_correlation_id"
"""Kept with an integration event whose domain event was recorded with a correlation id: no
field of the contract. The relay moves it into a message header (CORRELATION_HEADER); the
HTTP feed's answers leave it out (`interfaces/http/feed.py` reads only the contract's fields)."""
"""The largest page of the feed one read returns."""


FEED_TABLES = {
    "fridges": (
        "stream TEXT PRIMARY KEY, fridge_id TEXT NOT NULL, venue_id TEXT NOT NULL, "
        "city_id TEXT NOT NULL"
    ),
    "orders": (
        "stream TEXT PRIMARY KEY, order_id TEXT NOT NULL, fridge_id TEXT NOT NULL, "
        "venue_id TEXT NOT NULL, city_id TEXT NOT NULL"
    ),
    "events": (
        "position BIGINT PRIMARY KEY, event_id TEXT NOT NULL, type TEXT NOT NULL, "
        "body TEXT NOT NULL"
    ),
}


class FeedRows(View):
    """Where each stream is (fridge, venue, city; the order of an order's stream), and the
    integration events by position. A batch's rows are written at `flush`, a statement per
    table: a statement per event was a third of the feed worker's CPU per order."""

    def __init__(self, t: dict[str, str]) -> None:
        super().__init__(t)
        self._where: dict[str, tuple[Where, str | None] | None] = {}  # stream -> where, order
        self._fridges: dict[str, tuple[str, str, str, str]] = {}  # born in this batch
        self._orders: dict[str, tuple[str, str, str, str, str]] = {}
        self._events: dict[int, tuple[int, str, str, str]] = {}  # position -> row

    def forget(self) -> None:
        self._where.clear()
        self._fridges.clear()
        self._orders.clear()
        self._events.clear()

    def flush(self, tx: Tx) -> None:
        for table, rows, columns in (
            ("fridges", self._fridges, ("stream", "fridge_id", "venue_id", "city_id")),
            ("orders", self._orders, ("stream", "order_id", "fridge_id", "venue_id", "city_id")),
        ):
            if rows:
                tx.insert_rows(
                    self.t[table], columns, list(rows.values()), "ON CONFLICT (stream) DO NOTHING"
                )
        if self._events:
            tx.insert_rows(
                self.t["events"],
                ("position", "event_id", "type", "body"),
                list(self._events.values()),
                "ON CONFLICT (position) DO NOTHING",
            )
        self._fridges.clear()
        self._orders.clear()
        self._events.clear()

    def stream_born(self, tx: Tx, stream: str, where: Where, order_id: str | None) -> None:
        """A fridge's stream (order_id None) or an order's stream is at `where`."""
        if order_id is None:
            self._fridges.setdefault(
                stream, (stream, where.fridge_id, where.venue_id, where.city_id)
            )
        else:
            self._orders.setdefault(
                stream, (stream, order_id, where.fridge_id, where.venue_id, where.city_id)
            )
        self._where[stream] = (where, order_id)

    def located(self, tx: Tx, stream: str) -> tuple[Where, str | None] | None:
        """Where a stream is, and its order if it is an order's (None: never seen born)."""
        if stream not in self._where:
            row = tx.one(
                f"SELECT fridge_id, venue_id, city_id FROM {self.t['fridges']} WHERE stream = ?",
                (stream,),
            )
            if row is not None:
                self._where[stream] = (Where(*row), None)
            else:
                row = tx.one(
                    f"SELECT fridge_id, venue_id, city_id, order_id FROM {self.t['orders']} "
                    "WHERE stream = ?",
                    (stream,),
                )
                self._where[stream] = (Where(*row[:3]), row[3]) if row else None
        return self._where[stream]

    def published(self, tx: Tx, body: dict[str, Any]) -> None:
        """An integration event, at its position (written once: a replay changes nothing)."""
        self._events.setdefault(
            body["position"],
            (body["position"], body["id"], body["type"], json.dumps(body, sort_keys=True)),
        )


class Feed(Projection):
    """The integration events, by position, and where each stream is."""

    name = "feed"
    tables: ClassVar[dict[str, str]] = FEED_TABLES

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.rows = FeedRows(self.t)

    def views(self) -> Iterable[View]:
        return (self.rows,)

    def _publish(self, event: object, tx: Tx, position: int) -> None:
        stream = str(getattr(event, "originator_id", ""))
        if isinstance(event, Fridge.Installed):
            where = Where(event.fridge_id, event.venue_id, event.city_id)
            self.rows.stream_born(tx, stream, where, None)
        elif isinstance(event, Order.Placed):
            where = Where(event.fridge_id, event.venue_id, event.city_id)
            self.rows.stream_born(tx, stream, where, event.order_id)
            return  # the order was published when the fridge reserved its meals
        located = self.rows.located(tx, stream)
        if located is None:
            return  # a stream the feed never saw born (it cannot name its fridge)
        body = integration_event(event, located[0], position, located[1])
        if body is not None:
            cause = cause_of(event)
            if cause is not None and cause.correlation_id:
                body[CORRELATION_KEY] = cause.correlation_id
            self.rows.published(tx, body)


# What the runner decodes: the contract's classes, and the births that say where streams are.
Feed.handlers = {event_type: "_publish" for event_type in (*CONTRACT, Order.Placed)}


def read_page(tx: Tx, view: Feed, after: int, limit: int) -> list[dict[str, Any]]:
    """At most `limit` integration events after position `after`, in commit order."""
    rows = tx.rows(
        f"SELECT body FROM {view.t['events']} WHERE position > ? ORDER BY position LIMIT ?",
        (after, min(limit, MOST_PER_PAGE)),
    )
    return [json.loads(body) for (body,) in rows]


class FeedQueries:
    """The feed as the relay reads it (the API reads through its ReadSide)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def page(
        self, after: int, limit: int, timeout: float = WAIT_TIMEOUT
    ) -> Answer[list[dict[str, Any]]]:
        return answer(
            self.db, Feed, lambda tx, view: read_page(tx, view, after, limit), None, timeout
        )


RELAY_TABLE = "feed_relays"
"""Where each relay says how far it has published (read by status and /metrics only: a relay
resumes from what the stream holds, never from here)."""


def mark_relayed(db: Database, relay: str, position: int) -> None:
    """Relay `relay` has published every integration event up to `position`, and is alive."""
    with db.transaction() as tx:
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {RELAY_TABLE} (relay TEXT PRIMARY KEY, "
            "position BIGINT NOT NULL, seen_at TEXT NOT NULL)"
        )
        tx.execute(
            f"INSERT INTO {RELAY_TABLE} (relay, position, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (relay) DO UPDATE SET position = excluded.position, "
            "seen_at = excluded.seen_at",
            (relay, position, now_iso()),
        )


def relay_statuses(store: EventSource, db: Database) -> list[ShardStatus]:
    """Each relay's position and lag beside the projections' (shard "relay:<name>"); its state
    is running while it marked its progress within STALE_AFTER, stopped after."""
    with db.snapshot() as tx:
        if RELAY_TABLE not in {name.lower() for name in tx.table_names()}:
            return []
        rows = tx.rows(f"SELECT relay, position, seen_at FROM {RELAY_TABLE} ORDER BY relay")
    head = store.recorder.max_notification_id() or 0
    now = datetime.now(UTC)
    return [
        ShardStatus(
            projection=Feed.name,
            shard=f"relay:{relay}",
            generation=0,
            position=int(position),
            lag_events=max(0, head - int(position)),
            lag_seconds=lag_seconds(store, int(position), now),
            state="running" if now - datetime.fromisoformat(seen_at) < STALE_AFTER else "stopped",
            standbys=0,
            error=None,
        )
        for relay, position, seen_at in rows
    ]
