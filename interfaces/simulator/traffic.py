"""The actors: the kitchen delivers, fridges report counts, customers browse and order,
operators reprice. Each runs as asyncio tasks against the API; a session's choices come from
its own seeded generator, so the same seed plans the same day."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from interfaces.simulator import statuses
from interfaces.simulator.client import Answer, Api
from interfaces.simulator.figures import Figures
from interfaces.simulator.prices import PriceBook
from interfaces.simulator.profile import Day, Profile
from interfaces.simulator.world import MEALS_PER_FRIDGE, Fridge, World

SHELF_DAYS = 3


@dataclass
class PlacedOrder:
    """An order the API acknowledged (201), and what the simulator did with it since."""

    order_id: str
    customer: str
    fridge_id: str
    lines: dict[str, int]
    total: str
    position: int | None
    picked_up: bool = False
    cancelled: bool = False
    sent: float = 0.0
    answered: float = 0.0
    """Wall-clock seconds the order was sent and answered: which prices it may have paid."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Traffic:
    api: Api
    world: World
    day: Day
    peak_rate: float
    seed: int
    figures: Figures
    max_sessions: int
    orders: dict[str, PlacedOrder] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    """Counterexamples seen while driving (e.g. a repeated key that placed a second order)."""
    started: float = 0.0
    closing: bool = False
    sessions: set[asyncio.Task[None]] = field(default_factory=set)
    prices: PriceBook = field(default_factory=PriceBook)

    def __post_init__(self) -> None:
        if not self.prices.spells:
            self.prices = PriceBook.listed(self.world.meals)

    @property
    def profile(self) -> Profile:
        return self.day.profile

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def at(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - self.elapsed()))

    # --- the kitchen ------------------------------------------------------------------------

    def orders_per_fridge(self) -> float:
        return self.day.expected_sessions(self.peak_rate) / max(1, len(self.world.fridges))

    def units_per_meal(self, share: float) -> int:
        orders = self.orders_per_fridge()
        per_order = (1 + self.profile.two_meals_share) * (1 + self.profile.two_units_share)
        wanted = orders * per_order * self.profile.stock_per_expected_order / MEALS_PER_FRIDGE
        return max(2, math.ceil(wanted * share))

    async def deliver(self, fridge: Fridge, number: int, units: int) -> None:
        best_before = (datetime.now(UTC) + timedelta(days=SHELF_DAYS)).date().isoformat()
        body = {
            "delivery_id": f"{fridge.fridge_id}-d{number}",
            "lines": [{"meal_id": meal, "quantity": units} for meal in fridge.meals],
            "best_before": best_before,
        }
        path = f"/fridges/{fridge.fridge_id}/deliveries"
        async with fridge.lock:
            answer = await self.api.call("delivery", "POST", path, "kitchen", "kitchen", body)
            if answer.status == 201:
                for meal in fridge.meals:
                    fridge.physical[meal] = fridge.physical.get(meal, 0) + units
        if number == 1 and random.Random(f"{self.seed}-{fridge.fridge_id}").random() < 0.2:
            # the kitchen's system sends a delivery again: a repeat changes nothing
            await self.api.call("delivery", "POST", path, "kitchen", "kitchen", body)

    async def morning(self) -> None:
        units = self.units_per_meal(0.7)
        await asyncio.gather(*(self.deliver(f, 1, units) for f in self.world.fridges.values()))

    async def refill(self) -> None:
        hours = self.profile.refill_hour - self.profile.day_opens
        await self.at(self.day.real_seconds(hours * 60.0))
        units = self.units_per_meal(0.3)
        await asyncio.gather(*(self.deliver(f, 2, units) for f in self.world.fridges.values()))

    # --- the fridges ------------------------------------------------------------------------

    def held_by_open_orders(self, fridge_id: str) -> dict[str, int]:
        held: dict[str, int] = {}
        for order in self.orders.values():
            if order.fridge_id == fridge_id and not (order.picked_up or order.cancelled):
                for meal, units in order.lines.items():
                    held[meal] = held.get(meal, 0) + units
        return held

    async def fridge_device(self, fridge: Fridge) -> None:
        rng = random.Random(f"{self.seed}-device-{fridge.fridge_id}")
        reports = max(4.0, self.profile.counts_per_order * self.orders_per_fridge())
        every = self.day.seconds / reports
        moment = rng.random() * every
        while moment < self.day.seconds:
            await self.at(moment)
            await self.report(fridge, rng)
            moment += every
            while moment < self.elapsed():  # a slow answer: skip the ticks it missed
                moment += every
                self.figures.outcomes["count_ticks_missed"] += 1

    async def report(self, fridge: Fridge, rng: random.Random) -> None:
        path = f"/fridges/{fridge.fridge_id}/counts"
        call = self.api.call
        async with fridge.lock:
            for _ in range(fridge.orders_since_report):
                if rng.random() < self.profile.walk_ups_per_order:
                    self.walk_up(fridge, rng)
            fridge.orders_since_report = 0
            fridge.reports += 1
            body = {
                "report_id": f"{fridge.fridge_id}-r{fridge.reports}",
                "taken_at": datetime.now(UTC).isoformat(),
                "counts": {meal: fridge.physical.get(meal, 0) for meal in fridge.meals},
            }
            await call("count", "POST", path, "fridge", fridge.fridge_id, body)
            if rng.random() < self.profile.duplicate_report_share:
                await call("count", "POST", path, "fridge", fridge.fridge_id, body)
                self.figures.outcomes["duplicate_reports"] += 1
            if fridge.last_report and rng.random() < self.profile.late_report_share:
                late = {**fridge.last_report, "report_id": f"{body['report_id']}-late"}
                await call("count", "POST", path, "fridge", fridge.fridge_id, late)
                self.figures.outcomes["late_reports"] += 1
            fridge.last_report = body

    def walk_up(self, fridge: Fridge, rng: random.Random) -> None:
        """Someone buys a meal at the fridge without the app; rarely one an order holds."""
        held = self.held_by_open_orders(fridge.fridge_id)
        reserved = rng.random() < self.profile.reserved_walk_up_share
        choices = [
            meal
            for meal in fridge.meals
            if fridge.physical.get(meal, 0) > (0 if reserved else held.get(meal, 0))
        ]
        if choices:
            fridge.physical[rng.choice(choices)] -= 1
            self.figures.outcomes["walk_ups_reserved" if reserved else "walk_ups"] += 1

    # --- the operators ----------------------------------------------------------------------

    async def operator(self) -> None:
        rng = random.Random(f"{self.seed}-operator")
        every = self.day.real_seconds(self.profile.reprice_every_minutes)
        moment = every * (0.5 + rng.random())
        while moment < self.day.seconds:
            await self.at(moment)
            meal_id = rng.choice(sorted(self.world.meals))
            old = Decimal(self.world.meals[meal_id])
            new = str((old * Decimal(rng.choice(["0.9", "1.1"]))).quantize(Decimal("0.01")))
            await self.reprice(meal_id, new)
            moment += every

    async def reprice(self, meal_id: str, price: str) -> None:
        """Set a meal's price; a PUT is sent again when its answer was lost (it is idempotent),
        so the run knows which price is in force."""
        path = f"/meals/{meal_id}/price"
        sent = time.time()
        for _ in range(3):
            answer = await self.api.call(
                "reprice", "PUT", path, "operator", "operator", {"price": price}
            )
            if answer.status != 0:
                break
        if answer.ok:
            self.world.meals[meal_id] = price
            self.prices.repriced(meal_id, price, sent, time.time())
            self.figures.outcomes["repriced"] += 1
        else:
            self.figures.outcomes["reprice_refused"] += 1
            if answer.status == 0:  # it may have applied: its orders' prices are unknown
                self.prices.lost(meal_id)
                self.figures.notes.append(f"prices of {meal_id}: a reprice went unanswered")

    # --- the customers ----------------------------------------------------------------------

    async def customers(self) -> None:
        rng = random.Random(self.seed)
        for number, moment in enumerate(self.day.arrivals(self.peak_rate, rng)):
            await self.at(moment)
            if len(self.sessions) >= self.max_sessions:
                self.figures.dropped_sessions += 1
                continue
            task = asyncio.create_task(self.session(number))
            self.sessions.add(task)
            task.add_done_callback(self.sessions.discard)

    async def read(self, kind: str, path: str, customer: str, **params: Any) -> Answer:
        answer = await self.api.call(kind, "GET", path, "customer", customer, params=params or None)
        if answer.ok:
            self.figures.saw_read(answer.get("position"), answer.get("age_seconds"))
        return answer

    async def session(self, number: int) -> None:
        rng = random.Random(f"{self.seed}-session-{number}")
        world = self.world
        customer = rng.choice(world.customers)
        city_id = sorted(world.cities)[world.customers.index(customer) % len(world.cities)]
        venues = world.city_venues(city_id)
        chosen_venue = rng.choice(venues)
        mix = self.profile.read_mix
        for _ in range(mix.get("city_venues", 0)):
            await self.read("city_venues", f"/cities/{city_id}/venues", customer)
        for _ in range(mix.get("city_menu", 0)):
            await self.read("city_menu", f"/cities/{city_id}/menu", customer)
        looks = mix.get("venue_menu", 0)
        for n in range(looks):
            venue = chosen_venue if n >= looks - 2 else rng.choice(venues)
            await self.read("venue_menu", f"/venues/{venue}/menu", customer)
        fridge = rng.choice(world.venue_fridges(chosen_venue))
        stock = await self.read("stock", f"/fridges/{fridge.fridge_id}/stock", customer)
        for _ in range(mix.get("stock", 1) - 1):
            stock = await self.read("stock", f"/fridges/{fridge.fridge_id}/stock", customer)
        available = {m["meal_id"]: m["available"] for m in stock.get("meals", []) if m["available"]}
        if not available:
            self.figures.outcomes["nothing_available"] += 1
            return
        meals = rng.sample(sorted(available), min(len(available), 1 + (rng.random() < 0.2)))
        lines = [
            {"meal_id": m, "quantity": 2 if rng.random() < self.profile.two_units_share else 1}
            for m in meals
        ]
        await self.order(rng, customer, fridge, lines)

    async def order(
        self, rng: random.Random, customer: str, fridge: Fridge, lines: list[dict[str, Any]]
    ) -> None:
        key = f"{rng.getrandbits(128):032x}"
        # the fridge in the path: a balancer hashing on it sends every order of a fridge to
        # the process whose writer holds that fridge
        path = f"/fridges/{fridge.fridge_id}/orders"
        body = {"lines": lines}
        headers = {"Idempotency-Key": key}
        sent = time.time()
        answer = await self.api.call(
            "place_order", "POST", path, "customer", customer, body, headers=headers
        )
        answered = time.time()
        if answer.status == 409:
            self.figures.outcomes["sold_out"] += 1
            return
        if answer.status not in (200, 201):
            self.figures.outcomes["order_failed"] += 1
            return
        placed = PlacedOrder(
            answer.get("order_id"),
            customer,
            fridge.fridge_id,
            {line["meal_id"]: line["quantity"] for line in lines},
            answer.get("total"),
            answer.get("position"),
            sent=sent,
            answered=answered,
        )
        self.orders[placed.order_id] = placed
        fridge.orders_since_report += 1
        self.figures.outcomes["placed"] += 1
        if rng.random() < self.profile.retry_share:
            again = await self.api.call(
                "repeat_order", "POST", path, "customer", customer, body, headers=headers
            )
            self.figures.outcomes["repeated"] += 1
            if again.ok and again.get("order_id") != placed.order_id:
                self.broken.append(
                    f"idempotency: key {key} of {customer} placed {placed.order_id} and then "
                    f"{again.get('order_id')}"
                )
        fate = rng.random()
        if fate < self.profile.cancel_share:
            await asyncio.sleep(self.day.real_seconds(rng.uniform(0.5, 3.0)))
            await self.cancel(placed)
        elif fate < self.profile.cancel_share + self.profile.no_show_share:
            self.figures.outcomes["no_show"] += 1
        else:
            low, high = self.profile.walk_minutes
            await asyncio.sleep(self.day.real_seconds(rng.uniform(low, high)))
            await self.pick_up(placed, fridge)

    async def cancel(self, placed: PlacedOrder) -> None:
        path = f"/orders/{placed.order_id}/cancel"
        answer = await self.api.call("cancel", "POST", path, "customer", placed.customer)
        if answer.ok:
            placed.cancelled = True
            self.figures.outcomes["cancelled"] += 1
        else:
            self.figures.outcomes["cancel_refused"] += 1

    async def pick_up(self, placed: PlacedOrder, fridge: Fridge) -> None:
        """Wait (bounded) until the app says ready, open the fridge, take the meals out; the
        fridge reports the pickup."""
        path = f"/orders/{placed.order_id}"
        params: dict[str, Any] = {"min_position": placed.position} if placed.position else {}
        gap = max(self.day.real_seconds(1.0), 0.2)
        status = None
        for _ in range(self.profile.status_polls):
            answer = await self.read("order", path, placed.customer, **params)
            params = {}
            status = answer.get("status")
            if status == statuses.READY or (status is not None and statuses.is_final(status)):
                break
            await asyncio.sleep(gap)
        if status != statuses.READY:
            self.figures.outcomes["gave_up_waiting"] += 1
            return
        async with fridge.lock:
            for meal, units in placed.lines.items():
                fridge.physical[meal] = max(0, fridge.physical.get(meal, 0) - units)
            answer = await self.api.call(
                "pickup",
                "POST",
                f"/fridges/{fridge.fridge_id}/pickups",
                "fridge",
                fridge.fridge_id,
                {"order_id": placed.order_id},
            )
        if answer.ok:
            placed.picked_up = True
            self.figures.outcomes["picked_up"] += 1
        else:
            self.figures.outcomes["pickup_refused"] += 1
