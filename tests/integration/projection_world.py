"""Helpers for projection tests: a seeded random workload; read models compared table by table."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from application.errors import ApplicationError
from domain.errors import DomainError
from ops.root import WriteSide
from projections.database import Database
from projections.models import projection_named
from projections.projection import Shard, active_generation
from projections.runner import Runner
from tests.conftest import unique


@dataclass
class Workload:
    """What a seeded workload created, so tests can ask about it."""

    city: str = ""
    venues: list[str] = field(default_factory=list)
    fridges: list[str] = field(default_factory=list)
    meals: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)


def seed_world(side: WriteSide, rng: random.Random, *, venues: int = 3) -> Workload:
    """A city, venues with one or two fridges each, and four meals."""
    world = Workload(city=unique("city"))
    side.catalogue.register_city(world.city, "Berlin", "Europe/Berlin")
    for _ in range(venues):
        venue = unique("venue")
        side.catalogue.register_venue(venue, world.city, "Gym")
        world.venues.append(venue)
        for _ in range(rng.randint(1, 2)):
            fridge = unique("fridge")
            side.catalogue.install_fridge(fridge, venue)
            world.fridges.append(fridge)
    for name in ("soup", "salad", "curry", "wrap"):
        meal = unique(name)
        side.catalogue.register_meal(meal, name.title(), f"{rng.randint(3, 12)}.50", "EUR")
        world.meals.append(meal)
    world.customers = [unique("customer") for _ in range(4)]
    return world


def run_workload(side: WriteSide, world: Workload, rng: random.Random, steps: int) -> None:
    """Deliveries, counts, orders, payments, pickups, cancellations, expiries, repricing."""
    clock: Any = side.clock
    open_orders: list[tuple[str, str]] = []  # (order id, fridge id)
    for _ in range(steps):
        roll = rng.random()
        fridge = rng.choice(world.fridges)
        try:
            if roll < 0.2:
                lines = {m: rng.randint(1, 6) for m in rng.sample(world.meals, rng.randint(1, 3))}
                best_before = (clock() + timedelta(days=rng.randint(0, 3))).date()
                side.stock.deliver(fridge, unique("delivery"), lines, best_before)
            elif roll < 0.3:
                counts = {m: rng.randint(0, 8) for m in rng.sample(world.meals, 2)}
                side.stock.report_counts(fridge, unique("report"), clock(), counts)
            elif roll < 0.6:
                lines = {rng.choice(world.meals): rng.randint(1, 2)}
                customer = rng.choice(world.customers)
                placed = side.ordering.place(customer, unique("key"), fridge, lines)
                world.orders.append(placed.order_id)
                open_orders.append((placed.order_id, fridge))
            elif roll < 0.75 and open_orders:
                order_id, at = open_orders.pop(rng.randrange(len(open_orders)))
                side.ordering.ensure_order(order_id, at)  # as fulfilment opens it, first
                side.ordering.authorise_payment(order_id, unique("pay"))
                if rng.random() < 0.7:
                    side.ordering.pick_up(at, order_id)
            elif roll < 0.85 and open_orders:
                order_id, at = open_orders.pop(rng.randrange(len(open_orders)))
                side.ordering.cancel(order_id, fridge_id=at)
            elif roll < 0.93:
                clock.advance(minutes=rng.randint(1, 15))
                for order_id, at in list(open_orders):
                    if clock() >= side.ordering.ensure_order(order_id, at).payment_due_by:
                        side.ordering.expire(order_id)
                        open_orders.remove((order_id, at))
                side.stock.expire_reservations(fridge)
            elif roll < 0.97:
                clock.advance(hours=rng.randint(6, 30))
                side.stock.discard_expired(fridge)
            else:
                side.catalogue.reprice_meal(rng.choice(world.meals), f"{rng.randint(3, 12)}.90")
        except (DomainError, ApplicationError):
            pass  # sold out, closed, ...: the workload is random, the store decides


def runner_for(
    side: WriteSide,
    db: Database,
    name: str,
    shard: Shard | None = None,
    *,
    generation: int | None = None,
    batch_size: int = 500,
) -> Runner:
    cls = projection_named(name)
    return Runner(side.store, db, cls, shard, generation=generation, batch_size=batch_size)


def catch_up(side: WriteSide, db: Database, name: str, shard: Shard | None = None) -> Runner:
    """A runner for `name` that has applied everything in the store."""
    runner = runner_for(side, db, name, shard)
    runner.catch_up()
    return runner


def table_contents(db: Database, name: str, generation: int | None = None) -> dict[str, list[Any]]:
    """Every table of a projection's generation (short name -> sorted rows)."""
    cls = projection_named(name)
    with db.snapshot() as tx:
        view = cls(generation or active_generation(tx, name))
        return {
            short: sorted(tx.rows(f"SELECT * FROM {view.t[short]}"), key=repr)
            for short in cls.tables
        }
