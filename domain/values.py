"""Small values shared by the aggregates: ids, order lines, and how names map to streams."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid5

from domain.errors import InvalidRequest

# Ids chosen by callers (cities, venues, fridges, meals, deliveries, reports).
NATURAL_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")

# Fixed forever: every stream id is uuid5(STREAMS, "<kind>:<natural id>").
STREAMS = UUID("5f0c1d56-8e4a-4c39-9a55-7f2f0d2a6c11")

MealLines = dict[str, int]
"""Meal id to a positive number of units."""

PAYMENT_WINDOW = timedelta(minutes=10)
"""How long a reservation waits for payment before it is released."""

CLOSED_ORDERS_KEPT_FOR = timedelta(days=2)
"""How long a fridge remembers an order it has settled, so a late repeat stays a no-op."""

MOST_UNITS = 10_000
"""The most units of one meal a fridge count may report, and so the most one delivery may
bring in all: stock beyond it could never be confirmed by a count."""

REPORTS_KEPT_FOR = timedelta(days=2)
"""How long a fridge remembers what a count report said, so a reused report id is caught."""


def natural_id(kind: str, value: str) -> str:
    """Return `value` if it is a well-formed caller-chosen id, else raise InvalidRequest."""
    if not isinstance(value, str) or not NATURAL_ID.match(value):
        raise InvalidRequest(f"{kind} must match [a-z0-9][a-z0-9-]{{0,63}}, got {value!r}")
    return value


def stream_id(kind: str, value: str) -> UUID:
    """The stream (aggregate) id of the `kind` named `value`: deterministic, never random."""
    return uuid5(STREAMS, f"{kind}:{value}")


def order_id_for(customer_id: str, idempotency_key: str) -> str:
    """Order ids derive from the customer and their key, so two customers' keys never collide."""
    if not customer_id or not idempotency_key or len(idempotency_key) > 200:
        raise InvalidRequest("an order needs a customer and an Idempotency-Key of 1-200 characters")
    return str(uuid5(STREAMS, f"order:{customer_id}\x1f{idempotency_key}"))


def meal_lines(lines: Mapping[str, int]) -> MealLines:
    """Validate order or delivery lines: known-shaped meal ids, positive whole quantities."""
    if not lines:
        raise InvalidRequest("at least one line is needed")
    checked: MealLines = {}
    for meal_id, quantity in lines.items():
        natural_id("meal_id", meal_id)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidRequest(f"quantity of {meal_id} must be a positive integer")
        checked[meal_id] = quantity
    return checked


def aware(moment: datetime) -> datetime:
    """Refuse naive datetimes: every moment in Farmacy carries its timezone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequest(f"{moment.isoformat()} has no timezone")
    return moment


def money(amount: Decimal | str) -> Decimal:
    """A non-negative amount with at most two decimals."""
    try:
        value = Decimal(amount)
        # quantize raises too: an amount with more digits than the context holds (1e30)
        cents = value.quantize(Decimal("0.01")) if value.is_finite() else None
    except ArithmeticError:
        raise InvalidRequest(f"{amount!r} is not an amount") from None
    if cents is None or value < 0 or value != cents:
        raise InvalidRequest(f"{amount!r} must be a non-negative amount with two decimals")
    return cents


class ReleaseReason(StrEnum):
    """Why held meals went back on sale."""

    PAYMENT_FAILED = "payment_failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    NOT_COLLECTED = "not_collected"
