"""The price list: every meal on sale and its price, kept in memory by following the store.

Placing an order prices its lines here, with no read of the store per line or per order.
The list follows the store's meal events (registered, repriced) through a topic-filtered
read of the notification log, from the position it has reached:

- at most every `max_age` seconds, by whichever caller finds it older than that (one at a
  time; callers meanwhile price from the list as it is, never waiting on another's read);
- at once, when a caller asks for a meal the list does not know (a meal registered a moment
  ago, on another process).

So a repriced meal applies to orders priced once the list has passed its event's position,
within `max_age` of it being recorded; an order keeps the price it was placed at, because
the price goes into its reservation event.

Promotions join the list the same way: it follows imported sheets (domain/promotions.py)
and where each fridge stands (its venue and city), and prices a line at the best price in
force at the fridge at the moment asked. A campaign's start and end are moments in its
events, compared with the moment of each order: no cache stands between them, so a campaign
takes effect, and stops, at its second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.utils import get_topic

from application.errors import NotFound
from application.store import EventStore
from domain.catalogue import Meal
from domain.errors import InvalidRequest
from domain.fridge import Fridge
from domain.order import OrderLine
from domain.promotions import Campaigns, PromotionSheet

MEAL_TOPICS = (
    get_topic(Meal.Registered),
    get_topic(Meal.Repriced),
    get_topic(PromotionSheet.Imported),
    get_topic(Fridge.Installed),
)
READ_LIMIT = 1000


@dataclass(frozen=True)
class Price:
    meal_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Place:
    """Where a fridge stands: what promotions are scoped by."""

    venue_id: str
    city_id: str


@dataclass(frozen=True)
class Quote:
    """A meal's price at a place and moment: the regular price and what a customer pays."""

    meal_id: str
    regular: Decimal
    price: Decimal  # the best promotional price in force, or the regular one
    currency: str
    until: datetime | None  # when a promotion next starts or ends for this meal


class PriceList:
    def __init__(self, store: EventStore, max_age: float = 0.1) -> None:
        self.store = store
        self.max_age = max_age
        self.position = 0  # the last notification the list has taken in
        self._by_stream: dict[UUID, Price] = {}
        self._by_meal: dict[str, Price] = {}
        self._fridges: dict[str, Place] = {}
        self._venues: dict[str, str] = {}  # venue -> city, from the fridges installed there
        self.campaigns = Campaigns()
        self.sheets = 0  # promotion sheets taken in: what a cached menu was priced with
        self._read_at = float("-inf")
        self._reading = threading.Lock()

    def price(
        self,
        lines: Mapping[str, int],
        fridge_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[list[OrderLine], str]:
        """Each line at its meal's price at `fridge_id` at moment `at` (the best promotion
        in force there and then; the regular price without a fridge); one currency per
        order. NotFound for a meal that is not on sale."""
        if time.monotonic() - self._read_at > self.max_age:
            self.refresh(wait=False)
        place = self.place(fridge_id) if fridge_id is not None else None
        moment = at or datetime.now(UTC)
        priced: list[OrderLine] = []
        currencies = set()
        for meal_id, quantity in lines.items():
            price = self._by_meal.get(meal_id)
            if price is None:
                self.refresh(wait=True)
                price = self._by_meal.get(meal_id)
            if price is None:
                raise NotFound("meal", meal_id)
            currencies.add(price.currency)
            amount = price.amount
            if place is not None:
                amount = self.campaigns.best_price(
                    meal_id, amount, place.venue_id, place.city_id, moment
                )
            priced.append(OrderLine(meal_id=meal_id, quantity=quantity, unit_price=amount))
        if len(currencies) != 1:
            raise InvalidRequest("an order's meals must share one currency")
        return priced, currencies.pop()

    def quote(self, meal_id: str, venue_id: str, city_id: str, at: datetime) -> Quote | None:
        """A meal's regular and promotional price at a venue at a moment (None: unknown)."""
        if time.monotonic() - self._read_at > self.max_age:
            self.refresh(wait=False)
        price = self._by_meal.get(meal_id)
        if price is None:
            return None
        best = self.campaigns.best_price(meal_id, price.amount, venue_id, city_id, at)
        until = self.campaigns.changes(meal_id, at)
        return Quote(meal_id, price.amount, best, price.currency, until)

    def promotions_seen(self) -> int:
        """How many promotion sheets the list has taken in (after catching up, if it is
        older than `max_age`): a menu priced with fewer is out of date."""
        if time.monotonic() - self._read_at > self.max_age:
            self.refresh(wait=False)
        return self.sheets

    def promotional(
        self,
        meal_id: str,
        regular: Decimal,
        venue_id: str | None,
        city_id: str | None,
        at: datetime,
    ) -> tuple[Decimal | None, datetime | None]:
        """A meal's best promotional price at a venue (or, with no venue, city-wide
        promotions only) at `at`, None if no promotion beats `regular`; and the moment that
        may change (a promotion starting, ending or replaced)."""
        city = city_id or (self._venues.get(venue_id) if venue_id else None)
        if city is None:
            return None, None
        best = self.campaigns.best_price(meal_id, regular, venue_id or "", city, at)
        return (best if best < regular else None), self.campaigns.changes(meal_id, at)

    def place(self, fridge_id: str) -> Place | None:
        """Where a fridge stands, as its installation said (None: no such fridge)."""
        known = self._fridges.get(fridge_id)
        if known is None:
            self.refresh(wait=True)
            known = self._fridges.get(fridge_id)
        return known

    def refresh(self, *, wait: bool = True) -> int:
        """Take in the meal events recorded since the list's position; returns that position.

        With `wait=False` a caller that finds another thread reading goes on without waiting.
        """
        if not self._reading.acquire(blocking=wait):
            return self.position
        try:
            started = time.monotonic()
            # Read up to the head as it is now, and move there even where the last events
            # were not meals: the next read then scans only what came after.
            head: int = self.store.recorder.max_notification_id() or 0
            while self.position < head:
                found = self.store.recorder.select_notifications(
                    self.position + 1, READ_LIMIT, stop=head, topics=MEAL_TOPICS
                )
                for notification in found:
                    self._take_in(self.store.mapper.to_domain_event(notification))
                if len(found) < READ_LIMIT:
                    self.position = head
                else:
                    self.position = found[-1].id
            self._read_at = started
            return self.position
        finally:
            self._reading.release()

    def _take_in(self, event: object) -> None:
        if isinstance(event, PromotionSheet.Imported):
            self.campaigns.take(event)
            self.sheets += 1
            return
        if isinstance(event, Fridge.Installed):
            self._fridges[event.fridge_id] = Place(event.venue_id, event.city_id)
            self._venues[event.venue_id] = event.city_id
            return
        if isinstance(event, Meal.Registered):
            price = Price(event.meal_id, event.price, event.currency)
        elif isinstance(event, Meal.Repriced) and event.originator_id in self._by_stream:
            known = self._by_stream[event.originator_id]
            price = Price(known.meal_id, event.price, known.currency)
        else:
            return
        self._by_stream[event.originator_id] = price
        self._by_meal[price.meal_id] = price
