"""Contract tests of orders, reservations, city catalogue and refill plan; shards, side-by-side
rebuilds and poison events. Each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest

from interfaces.http.menu_cache import MenuCache
from ops.root import WriteSide
from projections.projection import Shard
from projections.rebuild import rebuild
from projections.reservations import ReservationQueries
from projections.runner import ProjectionFailed
from projections.venue_menu import VenueMenu
from tests.integration.projection_fixtures import OpenModels, OpenReads, models, reads, venue_menu
from tests.integration.projection_world import (
    catch_up,
    run_workload,
    runner_for,
    seed_world,
    table_contents,
)
from tests.integration.world import make_world, place_and_open

__all__ = ["models", "reads"]


def test_orders_show_status_and_history_per_order_and_customer(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side)
    paid = place_and_open(side, "carol", "k1", world.fridge_id, {world.soup: 1})
    side.ordering.authorise_payment(paid.order_id, "pay-1")
    cancelled = place_and_open(side, "carol", "k2", world.fridge_id, {world.salad: 1})
    side.ordering.cancel(cancelled.order_id)
    db = models("orders")
    catch_up(side, db, "orders")
    orders = reads({"orders": db}).orders
    order = orders.order(paid.order_id).value
    assert order is not None
    assert order.status == "ready_for_pickup"
    assert [status for status, _, _ in order.history] == ["placed", "paid", "ready_for_pickup"]
    mine = orders.customer_orders("carol").value
    assert {o.order_id: o.status for o in mine} == {
        paid.order_id: "ready_for_pickup",
        cancelled.order_id: "cancelled",
    }


def test_an_order_is_in_the_model_from_its_reservation_before_the_flow_opens_it(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side)
    placed = side.ordering.place("carol", "k1", world.fridge_id, {world.soup: 2})
    db = models("orders")
    catch_up(side, db, "orders")
    orders = reads({"orders": db}).orders
    order = orders.order(placed.order_id, min_position=placed.position).value
    assert order is not None
    assert (order.status, order.customer_id, order.fridge_id) == (
        "placed",
        "carol",
        world.fridge_id,
    )
    assert (order.total, order.currency) == ("13.00", "EUR")
    assert order.lines == [{"meal_id": world.soup, "quantity": 2, "unit_price": "6.50"}]
    assert [status for status, _, _ in order.history] == ["placed"]
    # Opened by the flow afterwards: still one order, one "placed" step, then it moves on.
    side.ordering.ensure_order(placed.order_id, world.fridge_id)
    side.ordering.authorise_payment(placed.order_id, "pay-1")
    catch_up(side, db, "orders")
    order = orders.order(placed.order_id).value
    assert order is not None
    assert [s for s, _, _ in order.history] == ["placed", "paid", "ready_for_pickup"]
    assert [o.order_id for o in orders.customer_orders("carol").value] == [placed.order_id]


def test_open_reservations_are_read_by_deadline(side: WriteSide, models: OpenModels) -> None:
    world = make_world(side)
    first = place_and_open(side, "dan", "k1", world.fridge_id, {world.soup: 1})
    side.clock.advance(minutes=1)  # type: ignore[attr-defined]
    second = place_and_open(side, "dan", "k2", world.fridge_id, {world.soup: 1})
    paid = place_and_open(side, "dan", "k3", world.fridge_id, {world.salad: 1})
    side.ordering.authorise_payment(paid.order_id, "pay")
    db = models("reservations")
    catch_up(side, db, "reservations")
    queries = ReservationQueries(db)
    due = queries.due(side.clock() + timedelta(minutes=30)).value
    assert [r.order_id for r in due] == [first.order_id, second.order_id]
    assert queries.due(side.clock()).value == []  # a paid reservation is never due


def test_city_catalogue_lists_meals_and_the_venues_that_have_them(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side, soup_units=2, salad_units=0)
    db = models("city_catalogue")
    catch_up(side, db, "city_catalogue")
    queries = reads({"city_catalogue": db}).city_catalogue
    menu = queries.menu(world.city_id, side.clock()).value
    meals = {m.meal_id: m for m in menu.meals}
    assert menu.known
    assert meals[world.soup].available == 2
    assert meals[world.soup].venues == [world.venue_id]
    assert queries.venues(world.city_id, None, 10).value == [(world.venue_id, "Gym")]
    assert queries.venues(world.city_id, world.venue_id, 10).value == []
    assert not queries.menu("nowhere", side.clock()).value.known


def test_refill_plan_tops_up_what_sold(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side, soup_units=10, salad_units=0)
    for n in range(7):
        placed = place_and_open(side, "erin", f"k{n}", world.fridge_id, {world.soup: 1})
        side.ordering.authorise_payment(placed.order_id, f"p{n}")
        side.ordering.pick_up(world.fridge_id, placed.order_id)
    db = models("refill_plan")
    catch_up(side, db, "refill_plan")
    (line,) = reads({"refill_plan": db}).refill_plan.plan(side.clock(), days=1).value
    assert (line.meal_id, line.sold_recently, line.target) == (world.soup, 7, 11)
    assert line.sellable_tomorrow == 3
    assert line.to_deliver == 8


def test_four_shards_of_the_venue_menu_equal_one_unsharded_worker(
    side: WriteSide, models: OpenModels
) -> None:
    rng = random.Random(11)
    world = seed_world(side, rng, venues=6)
    run_workload(side, world, rng, steps=200)
    db = models("venue_menu")
    for index in range(4):
        runner_for(side, db, "venue_menu", Shard(index, 4), batch_size=37).catch_up()
    runner_for(side, db, "venue_menu", generation=2).catch_up()
    sharded, whole = table_contents(db, "venue_menu", 1), table_contents(db, "venue_menu", 2)
    # each shard keeps versions of its own venues (and of every venue's meals): per venue,
    # the same positions
    assert by_venue(sharded.pop("versions")) == by_venue(whole.pop("versions"))
    assert sharded == whole


def by_venue(versions: list[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for _, venue, position in versions:
        found[venue] = max(position, found.get(venue, 0))
    return found


def test_a_side_by_side_rebuild_never_shows_an_empty_or_half_built_menu(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    rng = random.Random(12)
    world = seed_world(side, rng, venues=2)
    run_workload(side, world, rng, steps=200)
    db = models("venue_menu")
    catch_up(side, db, "venue_menu")
    venue = world.venues[0]
    read, cache = reads({"venue_menu": db}), MenuCache()
    expected = venue_menu(read, venue, side.clock(), cache=cache).value
    assert expected, "the workload left the venue without a menu"
    seen: list[Any] = []
    done = threading.Event()

    def read_while_rebuilding() -> None:
        while not done.is_set():
            seen.append(venue_menu(read, venue, side.clock(), cache=cache).value)

    reader = threading.Thread(target=read_while_rebuilding)
    reader.start()
    try:
        result = rebuild(side.store, db, "venue_menu", side_by_side=True, batch_size=20)
    finally:
        done.set()
        reader.join(10)
    assert result.new_generation == 2
    assert seen and all(menu == expected for menu in seen)
    assert venue_menu(read, venue, side.clock(), cache=cache).value == expected
    assert table_contents(db, "venue_menu", 1) == table_contents(db, "venue_menu", 2)


class Poisoned(VenueMenu):
    """A venue menu that cannot apply repricing (a stand-in for a bug or a bad event)."""

    def _meal_repriced(self, event: Any, tx: Any, position: int) -> None:
        raise ValueError("cannot price this")


def test_a_poison_event_stops_the_shard_naming_it_after_committing_what_came_before(
    side: WriteSide, models: OpenModels
) -> None:
    world = make_world(side)
    repriced = side.catalogue.reprice_meal(world.soup, "9.00").position
    place_and_open(side, "fay", "k1", world.fridge_id, {world.soup: 1})
    db = models("venue_menu")
    runner = runner_for(side, db, "venue_menu")
    runner.factory = lambda g, s: Poisoned(g, s)
    runner.projection = Poisoned(1)
    with pytest.raises(ProjectionFailed, match=f"Repriced at position {repriced}"):
        runner.catch_up()
    assert runner.position == (repriced or 0) - 1
    with pytest.raises(ProjectionFailed):
        runner.step()  # nothing is skipped: it stops again on the same event
