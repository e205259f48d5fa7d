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
from domain.values import order_id_for
from interfaces.http.app import create_app
from ops.root import build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, is_problem
from tests.integration.world import make_world


def api_with_lane(store_settings: Settings, size: int, queue: int) -> Iterator[Api]:
    settings = replace(store_settings, command_concurrency=size, command_queue=queue)
    side = build_write_side(settings, clock=FakeClock())
    world = make_world(side)
    with TestClient(create_app(side, settings), raise_server_exceptions=False) as client:
        yield Api(client, side, world, settings.secret, settings.payment_webhook_secret)


@pytest.fixture
def one_at_a_time(store_settings: Settings) -> Iterator[Api]:
    """An API whose lane runs one command and lets none wait."""
    yield from api_with_lane(store_settings, size=1, queue=0)


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


@pytest.fixture
def narrow_lane(store_settings: Settings) -> Iterator[Api]:
    """An API whose lane runs one command and lets two wait."""
    yield from api_with_lane(store_settings, size=1, queue=2)


def test_a_rush_past_the_lane_loses_no_order_and_places_none_it_refused(
    narrow_lane: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 customers at once while the first order is held: the lane takes 1 and queues 2,
    the other 21 are refused at once. Every 201 is an order with its meals reserved; no 503
    left an order or a reservation behind, and each can be placed when tried again."""
    api, rush = narrow_lane, 24
    place = api.side.ordering.place
    opened = threading.Event()

    def held_place(*args: Any) -> PlacedOrder:
        assert opened.wait(timeout=10)
        return place(*args)

    monkeypatch.setattr(api.side.ordering, "place", held_place)
    answered = threading.Condition()
    finished = 0

    def one(n: int) -> int:
        nonlocal finished
        status = api.order(f"cust-{n}", f"key-{n}", {api.world.soup: 1}).status_code
        with answered:
            finished += 1
            answered.notify_all()
        return status

    with ThreadPoolExecutor(rush) as pool:
        answers = [pool.submit(one, n) for n in range(rush)]
        with answered:  # the refusals come back while the first order is still held
            assert answered.wait_for(lambda: finished == rush - 3, timeout=10)
        opened.set()
        statuses = [answer.result(timeout=10) for answer in answers]

    assert sorted(statuses) == [201] * 3 + [503] * (rush - 3)
    placed = {n for n, status in enumerate(statuses) if status == 201}
    api.side.writer.forget(api.world.fridge_id)
    fridge = api.side.catalogue.fridge(api.world.fridge_id)
    for n in range(rush):  # every 201 is a reservation, and no 503 left one behind
        assert (order_id_for(f"cust-{n}", f"key-{n}") in fridge.open_orders()) == (n in placed)
    assert fridge.held(api.world.soup) == 3  # only the placed orders hold meals

    monkeypatch.setattr(api.side.ordering, "place", place)
    refused = next(n for n in range(rush) if n not in placed)
    again = api.order(f"cust-{refused}", f"key-{refused}", {api.world.soup: 1})
    assert again.status_code == 201
