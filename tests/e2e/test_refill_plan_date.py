"""The kitchen asks for the plan of a date over HTTP, as its own systems would."""

from __future__ import annotations

from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import live_api

__all__ = ["api", "live_api"]


def test_the_plan_for_a_date_over_http(live_api: Api) -> None:
    api, world = live_api, live_api.world
    params = {"date": "2026-11-23", "weeks": 2, "min_position": api.side.store.position()}
    plan = api.client.get("/kitchen/refill-plan", params=params, headers=api.as_(Role.KITCHEN))
    assert plan.status_code == 200, plan.text
    assert plan.json()["date"] == "2026-11-23" and plan.json()["weeks"] == 2
    lines = {
        line["meal_id"]: line
        for line in plan.json()["items"]
        if line["fridge_id"] == world.fridge_id
    }
    # stocked on 21 Nov with 10 soups and 5 salads fresh until the 23rd; no sales yet
    assert {m: (line["sellable_tomorrow"], line["to_deliver"]) for m, line in lines.items()} == {
        world.soup: (10, 0),
        world.salad: (5, 0),
    }
    assert lines[world.soup]["date"] == "2026-11-23" and lines[world.soup]["delivered"] == 0
    for wrong in (
        {"date": "2026-13-01"},
        {"date": "tomorrow"},
        {"date": "2026-11-23", "weeks": 0},
        {"date": "2026-11-23", "cover": 0},
    ):
        refused = api.client.get(
            "/kitchen/refill-plan", params=wrong, headers=api.as_(Role.KITCHEN)
        )
        assert refused.status_code == 422, (wrong, refused.text)
