"""Several venues' menus read in one snapshot (what an API process's poll reads again) are
each venue's menu as read alone, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ops.root import WriteSide
from projections.freshness import attempt
from projections.venue_menu import Menu, VenueMenu, venue_menus
from tests.integration.projection_fixtures import OpenModels, models
from tests.integration.projection_world import catch_up
from tests.integration.world import make_world, place_and_open

__all__ = ["models"]


def reader(side: WriteSide, models: OpenModels) -> Callable[[list[str]], dict[str, Menu]]:
    """Reads venues' menus together in one snapshot, once the model has caught up."""
    db = models("venue_menu")
    catch_up(side, db, "venue_menu")
    now = side.clock()

    def read(venue_ids: list[str]) -> dict[str, Menu]:
        found = attempt(
            db, VenueMenu, lambda tx, view, _: venue_menus(tx, view, venue_ids, now), None
        )
        assert not isinstance(found, int)
        return found.value

    return read


def test_venues_read_together_are_each_as_read_alone(side: WriteSide, models: OpenModels) -> None:
    one = make_world(side, soup_units=10, salad_units=5)
    second = one.fridge_id + "-b"
    side.catalogue.install_fridge(second, one.venue_id)
    side.stock.deliver(second, "d-2", {one.soup: 3}, (side.clock() + timedelta(days=1)).date())
    place_and_open(side, "alice", "k1", one.fridge_id, {one.soup: 2})
    other = make_world(side, soup_units=12, salad_units=0)
    read = reader(side, models)

    together = read([one.venue_id, other.venue_id, "nowhere"])
    assert together == {
        **read([one.venue_id]),
        **read([other.venue_id]),
        **read(["nowhere"]),
    }
    units = {
        venue: {item.meal_id: (item.available, item.fridges) for item in menu.items}
        for venue, menu in together.items()
    }
    assert units[one.venue_id] == {
        one.soup: (11, ((one.fridge_id, 8), (second, 3))),
        one.salad: (5, ((one.fridge_id, 5),)),
    }
    assert units[other.venue_id] == {other.soup: (12, ((other.fridge_id, 12),))}
    assert together["nowhere"] == Menu((), [])
    assert [f.fridge_id for f in together[one.venue_id].fridges] == [one.fridge_id, second]
    assert together[one.venue_id].version > 0 and together[other.venue_id].version > 0


def test_a_venue_whose_fridges_are_all_retired_has_an_empty_menu(
    side: WriteSide, models: OpenModels
) -> None:
    gone = make_world(side)
    side.stock.retire(gone.fridge_id)
    open_ = make_world(side, soup_units=4, salad_units=0)
    read = reader(side, models)

    for menus in (read([gone.venue_id]), read([gone.venue_id, open_.venue_id])):
        assert menus[gone.venue_id].items == [] and menus[gone.venue_id].fridges == ()
        assert menus[gone.venue_id].timezones == ("Europe/Berlin",)  # a venue it knows
    menus = read([open_.venue_id, gone.venue_id])
    assert [(i.meal_id, i.available) for i in menus[open_.venue_id].items] == [(open_.soup, 4)]
