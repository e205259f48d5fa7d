"""Menus show a promotion from the second its campaign starts to the second it ends, cached or
not; an order placed meanwhile keeps its promotional price after the campaign is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from interfaces.http.auth import Role
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import live_api, menu
from tests.sheets import HEADER, WRITERS

__all__ = ["api", "live_api"]

# 13:00-14:00 in Berlin on 21 November (CET, UTC+1)
STARTS = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ENDS = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def promotions(answer: Any) -> dict[str, tuple[str, str | None]]:
    assert answer.status_code == 200, answer.text
    return {i["meal_id"]: (i["price"], i["promotional_price"]) for i in answer.json()["items"]}


def test_a_campaign_shows_on_menus_from_its_first_second_to_its_last(live_api: Api) -> None:
    api = live_api
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    clock.now = STARTS - timedelta(minutes=5)
    world = api.world
    sheet = WRITERS["csv"](
        [
            HEADER,
            [
                "lunch",
                world.soup,
                f"city:{world.city_id}",
                20,
                None,
                "2026-11-21 13:00",
                "2026-11-21 14:00",
            ],
            [
                "lunch",
                world.salad,
                f"venue:{world.venue_id}",
                None,
                "7.00",
                "2026-11-21 13:00",
                "2026-11-21 14:00",
            ],
        ]
    )
    imported = api.client.post("/promotions/imports", content=sheet, headers=api.as_(Role.OPERATOR))
    assert imported.status_code == 201, imported.text
    position = imported.json()["position"]

    clock.now = STARTS - SECOND
    before = promotions(menu(api, position))
    assert before == {world.soup: ("6.50", None), world.salad: ("8.50", None)}
    clock.now = STARTS  # nothing was written since: the same read-model state, a kept menu
    during = promotions(menu(api, position))
    assert during == {world.soup: ("6.50", "5.20"), world.salad: ("8.50", "7.00")}

    city = api.client.get(f"/cities/{world.city_id}/menu", headers=api.as_(Role.CUSTOMER))
    assert promotions(city) == {world.soup: ("6.50", "5.20"), world.salad: ("8.50", None)}

    clock.now = STARTS + timedelta(minutes=30)
    placed = api.order("ana", "lunch-1", {world.soup: 2, world.salad: 1})
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"] == "17.40"  # 2 x 5.20 + 7.00

    clock.now = ENDS - SECOND
    assert promotions(menu(api, position))[world.soup] == ("6.50", "5.20")
    clock.now = ENDS
    assert promotions(menu(api, position)) == {
        world.soup: ("6.50", None),
        world.salad: ("8.50", None),
    }
    later = api.order("ben", "lunch-2", {world.soup: 1})
    assert later.json()["total"] == "6.50"
    order_id = placed.json()["order_id"]
    kept = api.client.get(f"/orders/{order_id}", headers=api.as_(Role.CUSTOMER, "ana"))
    assert kept.status_code == 200 and kept.json()["total"] == "17.40"
