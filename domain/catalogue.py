"""Cities, venues and meals: reference data, event-sourced so a rebuild recreates every menu.

Each is created once under a caller-chosen id. Creating it again with the same details is a
no-op; with different details it is a conflict (the application decides which, via `same_as`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidRequest
from domain.values import money, natural_id, stream_id

CURRENCY_CODES = frozenset({"EUR", "GBP", "USD", "CHF", "SEK", "DKK", "NOK", "PLN", "CZK"})


def checked_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequest("a name of 1-200 characters is needed")
    return name.strip()


def checked_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown timezone {timezone!r}") from None
    return timezone


def checked_currency(currency: str) -> str:
    if currency not in CURRENCY_CODES:
        raise InvalidRequest(f"unsupported currency {currency!r}")
    return currency


class City(Aggregate):
    """A geographic area: it partitions the catalogue and sets the local date."""

    INITIAL_VERSION = 0

    class Registered(Aggregate.Created):
        city_id: str
        name: str
        timezone: str

    @staticmethod
    def create_id(city_id: str) -> UUID:
        return stream_id("city", city_id)

    @classmethod
    def register(cls, city_id: str, name: str, timezone: str) -> City:
        return cls(
            city_id=natural_id("city_id", city_id),
            name=checked_name(name),
            timezone=checked_timezone(timezone),
        )

    @event(Registered)
    def __init__(self, city_id: str, name: str, timezone: str) -> None:
        self.city_id = city_id
        self.name = name
        self.timezone = timezone

    def same_as(self, other: City) -> bool:
        return (self.name, self.timezone) == (other.name, other.timezone)


class Venue(Aggregate):
    """A place (gym, office, hospital) in a city, with one or more fridges."""

    INITIAL_VERSION = 0

    class Registered(Aggregate.Created):
        venue_id: str
        city_id: str
        name: str

    @staticmethod
    def create_id(venue_id: str) -> UUID:
        return stream_id("venue", venue_id)

    @classmethod
    def register(cls, venue_id: str, city_id: str, name: str) -> Venue:
        return cls(
            venue_id=natural_id("venue_id", venue_id),
            city_id=natural_id("city_id", city_id),
            name=checked_name(name),
        )

    @event(Registered)
    def __init__(self, venue_id: str, city_id: str, name: str) -> None:
        self.venue_id = venue_id
        self.city_id = city_id
        self.name = name

    def same_as(self, other: Venue) -> bool:
        return (self.city_id, self.name) == (other.city_id, other.name)


class Meal(Aggregate):
    """A dish the kitchen cooks, with its list price and what a customer wants to know."""

    INITIAL_VERSION = 0

    class Registered(Aggregate.Created):
        meal_id: str
        name: str
        price: Decimal
        currency: str
        details: dict[str, Any]

    class Repriced(Aggregate.Event):
        price: Decimal

    @staticmethod
    def create_id(meal_id: str) -> UUID:
        return stream_id("meal", meal_id)

    @classmethod
    def register(
        cls,
        meal_id: str,
        name: str,
        price: Decimal | str,
        currency: str,
        details: dict[str, Any] | None = None,
    ) -> Meal:
        return cls(
            meal_id=natural_id("meal_id", meal_id),
            name=checked_name(name),
            price=money(price),
            currency=checked_currency(currency),
            details=dict(details or {}),
        )

    @event(Registered)
    def __init__(
        self, meal_id: str, name: str, price: Decimal, currency: str, details: dict[str, Any]
    ) -> None:
        self.meal_id = meal_id
        self.name = name
        self.price = price
        self.registered_price = price  # the list price it was registered with
        self.currency = currency
        self.details = details

    def same_as(self, other: Meal) -> bool:
        """`other` is this meal's registration again: a repeat, however it has been repriced
        since (a retried registration, or the demo's seeding after an operator's reprice)."""
        return (self.name, self.registered_price, self.currency, self.details) == (
            other.name,
            other.registered_price,
            other.currency,
            other.details,
        )

    def reprice(self, price: Decimal | str) -> bool:
        new_price = money(price)
        if new_price == self.price:
            return False
        self._repriced(price=new_price)
        return True

    @event(Repriced)
    def _repriced(self, price: Decimal) -> None:
        self.price = price
