"""Contract tests of the venue menu and fridge stock views, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ops.root import WriteSide
from projections.freshness import ReadModelBehind
from tests.integration.projection_fixtures import OpenModels, OpenReads, models, reads, venue_menu
from tests.integration.projection_world import catch_up
from tests.integration.world import make_world, place_and_open

__all__ = ["models", "reads"]


def test_venue_menu_sums_the_venues_fridges_less_what_is_held(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side, soup_units=10, salad_units=5)
    second = world.fridge_id + "-b"
    side.catalogue.install_fridge(second, world.venue_id)
    side.stock.deliver(second, "d-2", {world.soup: 3}, (side.clock() + timedelta(days=1)).date())
    placed = place_and_open(side, "alice", "k1", world.fridge_id, {world.soup: 2})

    db = models("venue_menu")
    catch_up(side, db, "venue_menu")
    read = reads({"venue_menu": db})
    answer = venue_menu(read, world.venue_id, side.clock(), min_position=placed.position)

    assert answer.position >= (placed.position or 0)
    menu = {item.meal_id: item for item in answer.value}
    assert menu[world.soup].available == 11
    assert menu[world.salad].available == 5
    assert menu[world.soup].price == "6.50"
    assert menu[world.salad].name == "Caesar salad"


def test_venue_menu_shows_a_new_price(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side)
    side.catalogue.reprice_meal(world.soup, "7.00")
    db = models("venue_menu")
    catch_up(side, db, "venue_menu")
    menu = venue_menu(reads({"venue_menu": db}), world.venue_id, side.clock()).value
    assert {item.meal_id: item.price for item in menu}[world.soup] == "7.00"


def test_fridge_stock_follows_counts_pickups_and_expiry(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side, soup_units=10, salad_units=5)
    side.stock.report_counts(world.fridge_id, "r-1", side.clock(), {world.soup: 7})
    placed = place_and_open(side, "bob", "k2", world.fridge_id, {world.soup: 3})
    side.ordering.authorise_payment(placed.order_id, "pay-1")
    side.ordering.pick_up(world.fridge_id, placed.order_id)
    place_and_open(side, "bob", "k3", world.fridge_id, {world.salad: 1})

    db = models("fridge_stock")
    catch_up(side, db, "fridge_stock")
    read = reads({"fridge_stock": db})
    report = read.fridge_stock.stock(world.fridge_id, side.clock()).value
    assert report is not None
    stock = {meal.meal_id: meal for meal in report.meals}
    assert (stock[world.soup].on_hand, stock[world.soup].held) == (4, 0)
    assert (stock[world.salad].on_hand, stock[world.salad].held) == (5, 1)
    assert stock[world.salad].available == 4
    assert report.last_report_age_seconds == 0

    side.clock.advance(days=3)  # type: ignore[attr-defined]
    report = read.fridge_stock.stock(world.fridge_id, side.clock()).value
    assert report is not None
    soup = {meal.meal_id: meal for meal in report.meals}[world.soup]
    assert (soup.on_hand, soup.fresh, soup.available) == (4, 0, 0)


def test_a_query_waits_for_a_position_it_never_reaches_only_so_long(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    world = make_world(side)
    db = models("fridge_stock")
    runner = catch_up(side, db, "fridge_stock")
    read = reads({"fridge_stock": db}, wait_seconds=0.05)
    with pytest.raises(ReadModelBehind):
        read.fridge_stock.stock(world.fridge_id, side.clock(), min_position=runner.position + 1)


def test_unknown_fridge_is_none(side: WriteSide, models: OpenModels, reads: OpenReads) -> None:
    db = models("fridge_stock")
    catch_up(side, db, "fridge_stock")
    assert reads({"fridge_stock": db}).fridge_stock.stock("nope", side.clock()).value is None


def test_a_pickup_beside_an_expired_batch_takes_fresh_units_in_the_view_as_in_the_fridge(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    """A sold meal is a fresh one: the view must not book the expired batch as sold."""
    world = make_world(side, soup_units=0, salad_units=0)
    today = side.clock().date()
    side.stock.deliver(world.fridge_id, "d-old", {world.soup: 2}, today)
    side.stock.deliver(world.fridge_id, "d-new", {world.soup: 2}, today + timedelta(days=3))
    placed = place_and_open(side, "alice", "k", world.fridge_id, {world.soup: 1})
    side.ordering.authorise_payment(placed.order_id, "pay-1")
    side.clock.advance(days=1)  # type: ignore[attr-defined]
    side.ordering.pick_up(world.fridge_id, placed.order_id)

    db = models("fridge_stock")
    catch_up(side, db, "fridge_stock")
    report = reads({"fridge_stock": db}).fridge_stock.stock(world.fridge_id, side.clock()).value
    assert report is not None
    soup = {meal.meal_id: meal for meal in report.meals}[world.soup]
    side.writer.forget(world.fridge_id)
    fridge = side.catalogue.fridge(world.fridge_id)
    local_today = fridge.today(side.clock())
    assert (soup.on_hand, soup.fresh) == (fridge.on_hand(world.soup), 1)
    assert soup.fresh == fridge.on_hand(world.soup, local_today)


def test_only_a_fridge_that_sells_counts_in_the_menus_and_the_plan(
    side: WriteSide, models: OpenModels, reads: OpenReads
) -> None:
    """The views' status filter is the domain's `sells`: an offline fridge's meals leave the
    venue menu, the city catalogue and the refill plan, and come back with it."""
    world = make_world(side, soup_units=4, salad_units=0)
    names = ("venue_menu", "city_catalogue", "refill_plan")
    dbs = {name: models(name) for name in names}
    read = reads(dbs)

    def on_sale() -> tuple[int, int, list[str]]:
        for name in names:
            catch_up(side, dbs[name], name)
        now = side.clock()
        menu = {
            item.meal_id: item.available for item in venue_menu(read, world.venue_id, now).value
        }
        in_city = {
            m.meal_id: m.available for m in read.city_catalogue.menu(world.city_id, now).value.meals
        }
        planned = [line.fridge_id for line in read.refill_plan.plan(now).value]
        return menu.get(world.soup, 0), in_city.get(world.soup, 0), planned

    assert on_sale() == (4, 4, [world.fridge_id])
    side.stock.take_offline(world.fridge_id, "door sensor")
    assert on_sale() == (0, 0, [])
    side.stock.bring_online(world.fridge_id)
    assert on_sale() == (4, 4, [world.fridge_id])
