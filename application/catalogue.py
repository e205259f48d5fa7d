"""Operators register cities, venues, fridges and meals, each created once by its own id, and
set a meal's price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from application.retry import on_conflict_retry
from application.store import EventStore
from domain.catalogue import City, Meal, Venue
from domain.errors import AlreadyExists
from domain.fridge import Fridge
from domain.values import natural_id


class Comparable(Protocol):
    def same_as(self, other: Any) -> bool: ...


C = TypeVar("C", bound=Aggregate)


@dataclass(frozen=True)
class Registered:
    created: bool  # False: it existed already with the same details (a repeat)
    position: int | None


@dataclass(frozen=True)
class Priced:
    """A meal's price after an operator set it."""

    meal_id: str
    price: Decimal
    currency: str
    changed: bool  # False: it had this price already (a repeat)
    position: int | None


class Catalogue:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def register_city(self, city_id: str, name: str, timezone: str) -> Registered:
        return self._create_once("city", city_id, City.register(city_id, name, timezone))

    def register_venue(self, venue_id: str, city_id: str, name: str) -> Registered:
        candidate = Venue.register(venue_id, city_id, name)
        self.city(city_id)
        return self._create_once("venue", venue_id, candidate)

    def install_fridge(self, fridge_id: str, venue_id: str) -> Registered:
        natural_id("fridge_id", fridge_id)
        venue = self.venue(natural_id("venue_id", venue_id))
        city = self.city(venue.city_id)
        candidate = Fridge(
            fridge_id=fridge_id, venue_id=venue_id, city_id=city.city_id, timezone=city.timezone
        )
        return self._create_once("fridge", fridge_id, candidate)

    def register_meal(
        self,
        meal_id: str,
        name: str,
        price: Decimal | str,
        currency: str,
        details: dict[str, Any] | None = None,
    ) -> Registered:
        candidate = Meal.register(meal_id, name, price, currency, details)
        return self._create_once("meal", meal_id, candidate)

    def reprice_meal(self, meal_id: str, price: Decimal | str) -> Priced:
        """Set a meal's list price: orders priced once the price list has the event pay it
        (application/prices.py); orders placed before keep theirs."""

        def attempt() -> Priced:
            meal = self.meal(natural_id("meal_id", meal_id))
            changed = meal.reprice(price)
            position = self.store.append(meal) if changed else self.store.position()
            return Priced(meal.meal_id, meal.price, meal.currency, changed, position)

        return on_conflict_retry(f"meal {meal_id}", attempt)

    def city(self, city_id: str) -> City:
        return self.store.load(City, "city", city_id, City.create_id(city_id))

    def venue(self, venue_id: str) -> Venue:
        return self.store.load(Venue, "venue", venue_id, Venue.create_id(venue_id))

    def meal(self, meal_id: str) -> Meal:
        return self.store.load(Meal, "meal", meal_id, Meal.create_id(meal_id))

    def fridge(self, fridge_id: str) -> Fridge:
        return self.store.load(Fridge, "fridge", fridge_id, Fridge.create_id(fridge_id))

    def fridge_of_stream(self, stream: UUID) -> Fridge:
        """The fridge of a stream id, for events that carry only that."""
        return self.store.load(Fridge, "fridge", str(stream), stream)

    def _create_once(self, kind: str, key: str, candidate: C) -> Registered:
        """Append `candidate` unless it exists; a repeat is fine, a different one is not."""
        try:
            existing: Aggregate = self.store.repository.get(candidate.id)
        except AggregateNotFoundError:
            try:
                return Registered(True, self.store.append(candidate))
            except IntegrityError:  # created concurrently: compare with the winner
                existing = self.store.repository.get(candidate.id)
        if type(existing) is not type(candidate) or not _same(existing, candidate):
            raise AlreadyExists(kind, key)
        return Registered(False, self.store.position())


def _same(existing: Aggregate, candidate: Aggregate) -> bool:
    comparable: Comparable = existing  # type: ignore[assignment]
    return comparable.same_as(candidate)
