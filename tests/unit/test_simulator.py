"""The simulator's plan and its invariant rules, without an API: the day's shape, the seed,
and how the check treats order statuses it does not know."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest

from interfaces.simulator import statuses
from interfaces.simulator.check import (
    CheckFailed,
    Findings,
    check_acknowledged,
    check_held,
    check_prices,
    settle,
)
from interfaces.simulator.client import Api
from interfaces.simulator.figures import Figures
from interfaces.simulator.prices import PriceBook
from interfaces.simulator.profile import Day, Profile
from interfaces.simulator.run import Plan
from interfaces.simulator.traffic import PlacedOrder
from interfaces.simulator.world import plan_world


def test_the_same_seed_plans_the_same_day_and_another_seed_another() -> None:
    day = Day(Profile(), seconds=140.0)
    first = day.arrivals(100.0, random.Random(3))
    assert first == day.arrivals(100.0, random.Random(3))
    assert first != day.arrivals(100.0, random.Random(4))


def test_customers_come_at_lunch_more_than_in_the_afternoon_as_the_shape_says() -> None:
    day = Day(Profile(), seconds=1400.0)  # 100 s per simulated hour
    arrivals = day.arrivals(200.0, random.Random(1))
    by_hour = Counter(int(day.hour_at(t)) for t in arrivals)
    # shape: 12 h is 1.0 of the peak, 15 h 0.3; 100 s an hour at 200/14 sessions a second
    assert 1200 < by_hour[12] < 1650
    assert 300 < by_hour[15] < 560
    assert by_hour[6] == 0 and by_hour[21] == 0


def test_the_world_has_the_fridges_and_cities_asked_for() -> None:
    world = plan_world("abc", cities=3, fridges=10, customers=40)
    assert len(world.fridges) == 10 and len(world.cities) == 3
    assert {f.city_id for f in world.fridges.values()} == set(world.cities)
    assert all(world.venues[f.venue_id] == f.city_id for f in world.fridges.values())


def order(order_id: str, status: str, units: int = 1) -> dict[str, object]:
    return {
        "order_id": order_id,
        "status": status,
        "fridge_id": "f1",
        "total": "7.90",
        "lines": [{"meal_id": "dal", "quantity": units, "unit_price": "7.90"}],
    }


def test_held_units_count_only_the_orders_that_hold() -> None:
    stock = {"f1": {"dal": {"held": 2}}}
    orders = {
        "a": order("a", "placed"),
        "b": order("b", "ready_for_pickup"),
        "c": order("c", "picked_up"),
    }
    found = Findings()
    check_held(stock, orders, found, Figures())
    assert found.broken == []
    orders["c"] = order("c", "paid")
    check_held(stock, orders, found, Figures())
    assert found.first == "held units: fridge f1 meal dal holds 2, its open orders 3"


def test_a_status_it_does_not_know_is_reported_and_leaves_that_fridge_unchecked() -> None:
    assert statuses.holds_meals("authorised") is None and not statuses.is_final("authorised")
    figures = Figures()
    found = Findings()
    check_held({"f1": {"dal": {"held": 5}}}, {"a": order("a", "authorised")}, found, figures)
    assert found.broken == []
    assert figures.unknown_statuses == Counter({"authorised": 1})
    assert found.unchecked == ["held units of f1: orders in statuses unknown here"]


def test_an_acknowledged_order_must_be_there_and_agree_with_what_was_done() -> None:
    placed = PlacedOrder("a", "ana", "f1", {"dal": 1}, "7.90", 12, picked_up=True)
    found = Findings()
    check_acknowledged({"a": placed}, {"a": order("a", "picked_up")}, found)
    assert found.broken == []
    check_acknowledged({"a": placed}, {"a": order("a", "cancelled")}, found)
    assert found.first == "order status inconsistent: order a: picked up but cancelled"
    found = Findings()
    check_acknowledged({"a": placed}, {}, found)
    assert found.first == "acknowledged order missing: order a of ana"


def test_an_order_may_pay_only_a_price_in_force_while_it_was_in_flight() -> None:
    book = PriceBook.listed({"dal": "7.90"})
    book.repriced("dal", "8.70", sent=100.0, answered=100.5)
    book.repriced("dal", "7.80", sent=200.0, answered=200.4)

    assert book.possible("dal", 50.0, 50.1) == {"7.90"}
    assert book.possible("dal", 100.2, 100.3) == {"7.90", "8.70"}  # the reprice in flight
    assert book.possible("dal", 101.0, 101.1) == {"7.90", "8.70"}  # the list may lag 2 s
    assert book.possible("dal", 150.0, 150.1) == {"8.70"}
    assert book.possible("dal", 300.0, 300.1) == {"7.80"}
    book.lost("dal")
    assert book.possible("dal", 300.0, 300.1) is None
    assert PriceBook.from_dict(book.as_dict()) == book


def test_an_order_at_a_price_not_in_force_or_not_adding_up_breaks_the_prices_invariant() -> None:
    book = PriceBook.listed({"dal": "7.90"})
    book.repriced("dal", "8.70", sent=100.0, answered=100.5)
    placed = PlacedOrder("a", "ana", "f1", {"dal": 1}, "7.90", 12, sent=150.0, answered=150.2)
    found = Findings()
    check_prices({"a": placed}, {"a": order("a", "placed")}, book, found)
    assert found.first == ("prices: order a paid 7.90 for dal, in force while it was placed: 8.70")
    early = PlacedOrder("a", "ana", "f1", {"dal": 1}, "7.90", 12, sent=50.0, answered=50.2)
    found = Findings()
    check_prices({"a": early}, {"a": order("a", "placed")}, book, found)
    assert found.broken == []
    found = Findings()
    check_prices({"a": early}, {"a": {**order("a", "placed"), "total": "8.90"}}, book, found)
    assert found.first == "prices: order a total 8.90, its lines 7.90"


def test_a_run_split_over_processes_gives_each_its_own_world_and_a_share_of_the_rate() -> None:
    plan = Plan("http://api", seed=5, rate=90.0, connections=48, tag="t", processes=3)
    parts = plan.parts()
    assert [p.tag for p in parts] == ["t-p0", "t-p1", "t-p2"]
    assert [p.seed for p in parts] == [5, 6, 7]
    assert {(p.rate, p.connections, p.processes) for p in parts} == {(30.0, 16, 1)}
    worlds = [p.world() for p in parts]
    assert not set(worlds[0].fridges) & set(worlds[1].fridges)
    assert not set(worlds[0].meals) & set(worlds[1].meals)


def test_pooled_figures_add_counts_pool_latencies_and_take_the_longest_day() -> None:
    first, second = Figures(), Figures()
    first.record("venue_menu", 200, 0.010)
    first.record("place_order", 500, 0.030, {"detail": "boom"})
    second.record("venue_menu", 200, 0.020)
    first.in_day, second.in_day = (2, 10.0), (1, 12.0)
    first.outcomes["placed"] += 1
    second.outcomes["placed"] += 2

    first.merge(second)

    assert first.requests == Counter({"venue_menu": 2, "place_order": 1})
    assert sorted(first.latencies["venue_menu"]) == [10.0, 20.0]
    assert first.errors == Counter({"place_order 500": 1})
    assert first.first_errors == ["place_order 500 {'detail': 'boom'}"]
    assert first.outcomes["placed"] == 3
    assert first.in_day == (3, 12.0)
    assert first.report(12.0)["rate_in_day"] == 0.25


def fake_api(fulfilment_positions: list[int | None]) -> tuple[Api, list[str]]:
    """An `Api` whose server says the store's head is 40 and fulfilment's position is the next
    of `fulfilment_positions` (the last one again once they run out), by httpx's mock transport."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"status": "ready", "position": 40})
        acted = (
            fulfilment_positions.pop(0)
            if len(fulfilment_positions) > 1
            else fulfilment_positions[0]
        )
        body = "# HELP farmacy_requests_total Total requests\n"
        if acted is not None:
            body += f"farmacy_fulfilment_position {acted}.0\n"
        return httpx.Response(200, text=body)

    api = Api("http://farmacy.test", lambda role, subject: "token", Figures(), connections=1)
    api.http = httpx.AsyncClient(
        base_url="http://farmacy.test", transport=httpx.MockTransport(answer)
    )
    return api, asked


def test_the_check_waits_for_fulfilment_to_act_on_everything_up_to_the_head() -> None:
    api, asked = fake_api([31, 38, 40])
    head = asyncio.run(settle(api, quiet=0.3, bound=10))
    assert head == 40
    assert asked.count("/metrics") == 3  # 31 and 38 were not yet the head


def test_without_a_fulfilment_position_the_check_settles_on_a_still_head() -> None:
    api, asked = fake_api([None])
    assert asyncio.run(settle(api, quiet=0.3, bound=10)) == 40
    assert asked.count("/metrics") == 1


def test_fulfilment_that_never_catches_up_fails_the_check_by_its_bound() -> None:
    api, _ = fake_api([39])
    with pytest.raises(CheckFailed, match="fulfilment did not catch up"):
        asyncio.run(settle(api, quiet=0.1, bound=1))
