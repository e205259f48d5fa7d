"""A menu a customer can order from (issue 18, part 4): per meal, which of the venue's fridges
hold it and how many each; the venue's fridges and their state, as cheap as the menu."""

from __future__ import annotations

from datetime import timedelta

import httpx

from application.fridge_cloud import Poller
from interfaces.http.auth import Role
from tests.conftest import FakeClock, unique
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import live_api, position
from tests.e2e.test_menu_versions import database_reads, from_memory_at, venue_menu

__all__ = ["api", "live_api"]


def fridges(api: Api, venue_id: str, min_position: int | None = None) -> httpx.Response:
    params = {} if min_position is None else {"min_position": min_position}
    return api.client.get(
        f"/venues/{venue_id}/fridges", params=params, headers=api.as_(Role.CUSTOMER, "ana")
    )


def held_in(answer: httpx.Response) -> dict[str, list[tuple[str, int]]]:
    return {
        item["meal_id"]: [(f["fridge_id"], f["available"]) for f in item["fridges"]]
        for item in answer.json()["items"]
    }


def states(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {f["fridge_id"]: f["state"] for f in answer.json()["fridges"]}


def test_the_menu_names_the_fridges_that_hold_each_meal_and_an_order_there_succeeds(
    live_api: Api,
) -> None:
    api, world = live_api, live_api.world
    second = unique("fridge")
    api.side.catalogue.install_fridge(second, world.venue_id)
    best_before = (api.side.clock() + timedelta(days=2)).date()
    api.side.stock.deliver(second, unique("delivery"), {world.soup: 3}, best_before)

    menu = venue_menu(api, world.venue_id, api.side.store.position())
    assert held_in(menu) == {
        world.soup: sorted([(world.fridge_id, 10), (second, 3)]),
        world.salad: [(world.fridge_id, 5)],
    }
    assert {i["meal_id"]: i["available"] for i in menu.json()["items"]} == {
        world.soup: 13,
        world.salad: 5,
    }
    # the salad is only in the first fridge: the second has none to sell
    assert api.order("ana", "k0", {world.salad: 1}, second).status_code == 409
    placed = api.order("ana", "k1", {world.soup: 3}, second)  # where the menu says it is
    assert placed.status_code == 201, placed.text
    after = venue_menu(api, world.venue_id, position(placed))
    assert held_in(after)[world.soup] == [(world.fridge_id, 10)]  # the second has none left


def test_a_venues_fridges_say_whether_they_are_active_offline_or_stale(live_api: Api) -> None:
    api, world = live_api, live_api.world
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    second, third = unique("fridge"), unique("fridge")
    for fridge in (second, third):
        api.side.catalogue.install_fridge(fridge, world.venue_id)
    api.side.stock.take_offline(second, "door broken")
    api.side.stock.retire(third)  # gone: not listed
    answer = fridges(api, world.venue_id, api.side.store.position())
    assert states(answer) == {world.fridge_id: "active", second: "offline"}
    assert list(states(answer)) == sorted(states(answer))

    api.side.stock.report_counts(world.fridge_id, "r1", clock.now, {world.soup: 10})
    poller = Poller(api.side.store, api.side.stock, None, clock, timedelta(minutes=30))
    poller.poll_round()
    clock.advance(minutes=31)
    assert poller.poll_round().marked_stale == [world.fridge_id]
    answer = fridges(api, world.venue_id, api.side.store.position())
    assert states(answer) == {world.fridge_id: "stale", second: "offline"}
    assert answer.json()["fridges"][[*states(answer)].index(world.fridge_id)]["stale_since"] == (
        clock.now.isoformat()
    )


def test_a_venues_fridges_are_read_as_cheaply_as_its_menu(live_api: Api) -> None:
    api, world = live_api, live_api.world
    wanted = position(api.order("ana", "k1", {world.soup: 1}))
    from_memory_at(api, lambda: fridges(api, world.venue_id), wanted)
    reads = database_reads(api)
    assert states(fridges(api, world.venue_id)) == {world.fridge_id: "active"}
    assert held_in(venue_menu(api, world.venue_id))[world.soup] == [(world.fridge_id, 9)]
    assert database_reads(api) == reads  # both from the menu kept in memory


def test_the_fridges_of_an_unknown_venue_are_a_404(live_api: Api) -> None:
    answer = fridges(live_api, "no-such-venue")
    assert answer.status_code == 404 and is_problem(answer)
    assert fridges(live_api, "Not A Venue!").status_code in (400, 422)


def test_the_schema_documents_the_venues_fridges_and_where_each_meal_is(live_api: Api) -> None:
    schema = live_api.client.get("/schema/openapi.json").json()
    route = schema["paths"]["/venues/{venue_id}/fridges"]["get"]
    assert {"200", "404"} <= set(route["responses"])
    components = schema["components"]["schemas"]
    assert "fridges" in components["VenueMenuEntry"]["properties"]
    assert "state" in components["VenueFridgeEntry"]["properties"]
