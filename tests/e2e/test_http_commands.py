"""Commands wait their turn at the write side; past a full queue they are 503, at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from application.orders import PlacedOrder
from interfaces.http.app import create_app
from ops.bootstrap import build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, is_problem
from tests.integration.world import make_world


@pytest.fixture
def one_at_a_time(store_settings: Settings) -> Iterator[Api]:
    """An API whose lane runs one command and lets none wait."""
    settings = replace(store_settings, command_concurrency=1, command_queue=0)
    side = build_write_side(settings, clock=FakeClock())
    world = make_world(side)
    with TestClient(create_app(side, settings), raise_server_exceptions=False) as client:
        yield Api(client, side, world, settings.secret)


def test_an_order_beyond_a_full_lane_is_503_with_retry_after_and_the_first_is_placed(
    one_at_a_time: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = one_at_a_time
    place = api.side.ordering.place
    inside, opened = threading.Event(), threading.Event()

    def held_place(*args: Any) -> PlacedOrder:
        inside.set()
        assert opened.wait(timeout=10)
        return place(*args)

    shed_before = shed(api)
    monkeypatch.setattr(api.side.ordering, "place", held_place)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.order, "cust-1", "key-1", {api.world.soup: 1})
        assert inside.wait(timeout=10)

        refused = api.order("cust-2", "key-2", {api.world.soup: 1})
        assert refused.status_code == 503
        assert is_problem(refused)
        assert refused.headers["Retry-After"] == "1"
        assert "waiting" in refused.json()["detail"]

        opened.set()
        assert first.result(timeout=10).status_code == 201

    monkeypatch.setattr(api.side.ordering, "place", place)
    again = api.order("cust-2", "key-2", {api.world.soup: 1})
    assert again.status_code == 201
    assert shed(api) == shed_before + 1


def shed(api: Api) -> float:
    """What /metrics says of commands shed (a counter of the whole process)."""
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith("farmacy_commands_shed_total "):
            return float(line.split()[1])
    raise AssertionError("/metrics has no farmacy_commands_shed_total")
