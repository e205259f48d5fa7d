"""The integration events: what other subsystems may rely on, mapped from the domain's events.

This module is the published contract (docs/feed.md documents every type with an example).
`CONTRACT` maps each declared domain event class to the integration event it becomes: its
type, and a function that picks the fields it carries. Adding an event to the feed is one
entry here (and its paragraph in docs/feed.md). Nothing internal leaves: no stream UUIDs, no
request fingerprints, no payment data beyond the processor's reference.

Every integration event names the fridge, venue and city it concerns. Fridge events after
`Installed` and order events after `Placed` carry only their stream's id, so whoever applies
the contract (projections/feed.py) remembers where each stream is (`Where`).

Version 1. A change that removes or renames a field, or changes its meaning, is version 2 and
is published beside version 1 for as long as docs/feed.md says.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.fridge import Fridge
from domain.order import Order

VERSION = 1

PARTITIONS = 8
"""How many partitions the feed's subjects are spread over (a stable hash of the fridge id).
Changing it moves fridges between partitions: one fridge's events stay in order only within
one partition count."""

EVENT_IDS = uuid.UUID("6f1d3a52-9b0e-4c7a-8a43-1f0e2b7c5d21")
"""The namespace of integration event ids: uuid5 of a domain event's stream and version, so
a rebuild of the feed gives every event the id it had."""


@dataclass(frozen=True)
class Where:
    """The fridge, venue and city an event concerns."""

    fridge_id: str
    venue_id: str
    city_id: str


def partition_of(fridge_id: str, partitions: int = PARTITIONS) -> int:
    """The partition of a fridge's events: stable across processes, hosts and versions."""
    return zlib.crc32(fridge_id.encode()) % partitions


def plain(value: Any) -> Any:
    """A value as JSON has it: decimals as strings ("8.50"), moments and days as ISO text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Entry:
    """One line of the contract: the integration event's type, and the fields it carries."""

    type: str
    data: Callable[[Any], dict[str, Any]]
    order_id: Callable[[Any], str | None] = lambda _: None
    """The order an event of a fridge's stream is about (order events know theirs)."""


def _lines(lines: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"meal_id": meal, "quantity": units} for meal, units in sorted(lines.items())]


def _placed(e: Fridge.MealsReserved) -> dict[str, Any]:
    priced: list[Any] = list(e.priced_lines or []) or [
        {"meal_id": m, "quantity": q, "unit_price": None} for m, q in sorted(e.lines.items())
    ]
    return {
        "customer_id": e.customer_id,
        "lines": plain(priced),
        "total": plain(e.total),
        "currency": e.currency,
        "payment_due_by": plain(e.expires_at),
    }


CONTRACT: dict[type, Entry] = {
    Fridge.Installed: Entry("fridge.installed", lambda e: {"timezone": e.timezone}),
    Fridge.MealsDelivered: Entry(
        "delivery.received",
        lambda e: {
            "delivery_id": e.delivery_id,
            "lines": _lines(e.lines),
            "best_before": plain(e.best_before),
        },
    ),
    Fridge.StockAdjusted: Entry(
        "stock.adjusted",
        lambda e: {
            "report_id": e.report_id,
            "reason": e.reason,
            "differences": _lines(e.differences),
        },
    ),
    Fridge.MealsExpired: Entry("meals.expired", lambda e: {"batches": plain(e.batches)}),
    Fridge.ReservedMealsMissing: Entry(
        "stock.reserved_meals_missing",
        lambda e: {
            "meal_id": e.meal_id,
            "held": e.held,
            "on_hand": e.on_hand,
            "order_ids": list(e.order_ids),
        },
    ),
    Fridge.TakenOffline: Entry("fridge.offline", lambda e: {"reason": e.reason}),
    Fridge.BackOnline: Entry("fridge.online", lambda e: {}),
    Fridge.Retired: Entry("fridge.retired", lambda e: {}),
    Fridge.MealsReserved: Entry("order.placed", _placed, order_id=lambda e: e.order_id),
    Order.PaymentAuthorised: Entry("order.paid", lambda e: {"payment_ref": e.payment_ref}),
    Order.ReadyForPickup: Entry("order.ready", lambda e: {}),
    Order.PickedUp: Entry("order.picked_up", lambda e: {"at": plain(e.at)}),
    Order.Cancelled: Entry("order.cancelled", lambda e: {"reason": e.reason}),
    Order.PaymentFailed: Entry("order.payment_failed", lambda e: {"reason": e.reason}),
    Order.Expired: Entry("order.expired", lambda e: {}),
    Order.Refunded: Entry("order.refunded", lambda e: {"reason": e.reason}),
    Order.NotCollected: Entry(
        "order.not_collected", lambda e: {"reason": e.reason, "no_show_policy": e.policy}
    ),
    Order.PaymentCaptured: Entry("payment.captured", lambda e: {"amount": plain(e.amount)}),
    Order.PaymentVoided: Entry("payment.voided", lambda e: {"reason": e.reason}),
    Order.PaymentRefunded: Entry(
        "payment.refunded", lambda e: {"amount": plain(e.amount), "reason": e.reason}
    ),
    Fridge.MarkedStale: Entry(
        "fridge.stale",
        lambda e: {"last_report_at": plain(e.last_report_at), "at": plain(e.at)},
    ),
    Fridge.ReportingAgain: Entry(
        "fridge.reporting_again",
        lambda e: {"report_id": e.report_id, "taken_at": plain(e.taken_at)},
    ),
}
"""Domain event class -> integration event. Not published: a promotions sheet
(`PromotionSheet.Imported`) names cities and venues, not a fridge, and every integration event
names the fridge it concerns; the menus show what a campaign changed."""

ORDER_STATUS = {
    "order.placed": "placed",
    "order.paid": "paid",
    "order.ready": "ready",
    "order.picked_up": "picked_up",
    "order.cancelled": "cancelled",
    "order.payment_failed": "payment_failed",
    "order.expired": "expired",
    "order.refunded": "refunded",
    "order.not_collected": "not_collected",
}
"""The status of a reservation after each order event: the compacted view's value."""


def event_id(stream: uuid.UUID, version: int) -> str:
    return str(uuid.uuid5(EVENT_IDS, f"{stream}:{version}"))


def integration_event(
    event: Any, where: Where, position: int, order_id: str | None = None
) -> dict[str, Any] | None:
    """The integration event `event` becomes at `position`, or None if it is not published.
    `order_id` names the order of an event of an order's stream."""
    entry = CONTRACT.get(type(event))
    if entry is None:
        return None
    return {
        "id": event_id(event.originator_id, event.originator_version),
        "type": entry.type,
        "version": VERSION,
        "position": position,
        "occurred_at": plain(event.timestamp),
        "city_id": where.city_id,
        "venue_id": where.venue_id,
        "fridge_id": where.fridge_id,
        "partition": partition_of(where.fridge_id),
        "order_id": order_id if order_id is not None else entry.order_id(event),
        "data": entry.data(event),
    }
