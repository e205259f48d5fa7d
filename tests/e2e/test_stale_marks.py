"""A fridge gone silent shows as stale on its stock and on its venue's menu, until it reports."""

from __future__ import annotations

from datetime import timedelta

from application.fridge_cloud import Poller
from interfaces.http.auth import Role
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import live_api, menu

__all__ = ["api", "live_api"]


def test_stock_and_menu_say_a_fridge_is_stale_until_it_reports_again(live_api: Api) -> None:
    api, world = live_api, live_api.world
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    api.side.stock.report_counts(world.fridge_id, "r1", clock.now, {world.soup: 10})
    poller = Poller(api.side.store, api.side.stock, None, clock, timedelta(minutes=30))
    poller.poll_round()
    operator = api.as_(Role.OPERATOR)

    def stock() -> dict[str, object]:
        answer = api.client.get(
            f"/fridges/{world.fridge_id}/stock",
            params={"min_position": api.side.store.position()},
            headers=operator,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body

    assert stock()["stale_since"] is None
    assert menu(api, api.side.store.position()).json()["stale_fridges"] == []

    clock.advance(minutes=31)
    assert poller.poll_round().marked_stale == [world.fridge_id]
    assert stock()["stale_since"] == clock.now.isoformat()
    assert menu(api, api.side.store.position()).json()["stale_fridges"] == [world.fridge_id]

    api.side.stock.report_counts(world.fridge_id, "r2", clock.now, {world.soup: 9})
    assert stock()["stale_since"] is None
    assert menu(api, api.side.store.position()).json()["stale_fridges"] == []
