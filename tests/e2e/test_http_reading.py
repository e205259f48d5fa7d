"""Reading through the API with the workers running, on every store: menus follow orders,
cancellations, deliveries and counts; a client that just wrote reads its own write."""

from __future__ import annotations

from datetime import timedelta

from interfaces.http.auth import Role
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import available, live_api, menu

__all__ = ["api", "live_api"]


def test_an_order_and_its_cancellation_show_on_the_venue_menu(live_api: Api) -> None:
    api, world = live_api, live_api.world
    before = menu(api, api.side.store.position())
    assert available(before) == {world.soup: 10, world.salad: 5}
    body = before.json()
    assert body["venue_id"] == world.venue_id and isinstance(body["position"], int)
    assert body["as_of"] and 0 <= body["age_seconds"] < 60

    placed = api.order("ana", "k1", {world.soup: 2})
    assert placed.status_code == 201
    ordered = menu(api, placed.json()["position"])
    assert available(ordered) == {world.soup: 8, world.salad: 5}
    assert ordered.json()["position"] >= placed.json()["position"]
    assert int(ordered.headers["X-Read-Position"]) == ordered.json()["position"]

    order_id = placed.json()["order_id"]
    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=api.as_(Role.CUSTOMER, "ana"))
    back = menu(api, cancelled.json()["position"])
    assert available(back) == {world.soup: 10, world.salad: 5}


def test_a_delivery_raises_the_menu_and_a_count_that_disagrees_adjusts_it(live_api: Api) -> None:
    api, world = live_api, live_api.world
    best_before = (api.side.clock() + timedelta(days=2)).date().isoformat()
    delivery = {
        "delivery_id": "d-7",
        "lines": [{"meal_id": world.salad, "quantity": 3}],
        "best_before": best_before,
    }
    delivered = api.client.post(
        f"/fridges/{world.fridge_id}/deliveries", json=delivery, headers=api.as_(Role.KITCHEN)
    )
    assert available(menu(api, delivered.json()["position"]))[world.salad] == 8

    report = {
        "report_id": "r-1",
        "taken_at": api.side.clock().isoformat(),
        "counts": {world.soup: 7, world.salad: 8},
    }
    counted = api.client.post(
        f"/fridges/{world.fridge_id}/counts",
        json=report,
        headers=api.as_(Role.FRIDGE, world.fridge_id),
    )
    assert counted.status_code == 201
    assert available(menu(api, counted.json()["position"])) == {world.soup: 7, world.salad: 8}

    stock = api.client.get(
        f"/fridges/{world.fridge_id}/stock",
        params={"min_position": counted.json()["position"]},
        headers=api.as_(Role.FRIDGE, world.fridge_id),
    )
    assert stock.status_code == 200
    body = stock.json()
    assert body["last_report_age_seconds"] == 0.0
    soup = next(m for m in body["meals"] if m["meal_id"] == world.soup)
    assert soup == {"meal_id": world.soup, "on_hand": 7, "fresh": 7, "held": 0, "available": 7}


def test_a_menu_is_not_sent_again_until_what_is_on_sale_changes(live_api: Api) -> None:
    api, world = live_api, live_api.world
    first = menu(api, api.side.store.position())
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = menu(api, None, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.content
    # an event that changes nothing on sale (a new city elsewhere) keeps the tag
    city = {"city_id": "hamburg", "name": "Hamburg", "timezone": "Europe/Berlin"}
    registered = api.client.post("/cities", json=city, headers=api.as_(Role.OPERATOR))
    unchanged = menu(api, registered.json()["position"], **{"If-None-Match": etag})
    assert unchanged.status_code == 304
    placed = api.order("ana", "k1", {world.salad: 1})
    changed = menu(api, placed.json()["position"], **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_a_position_the_model_does_not_reach_in_time_is_503_with_retry_after(
    live_api: Api,
) -> None:
    ahead = live_api.side.store.position() + 1_000
    # the store has written it (as far as the API asks), the model has not got there
    reading = live_api.client.app.state["menus"].read
    reading.head = lambda: ahead
    answer = menu(live_api, ahead)
    assert answer.status_code == 503 and is_problem(answer)
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["wanted"] == ahead


def test_unknown_venue_city_or_fridge_is_404(live_api: Api) -> None:
    api = live_api
    headers = api.as_(Role.OPERATOR)
    for path in (
        "/venues/no-such-venue/menu",
        "/cities/no-such-city/menu",
        "/cities/no-such-city/venues",
        "/fridges/no-such-fridge/stock",
    ):
        answer = api.client.get(path, headers=headers)
        assert answer.status_code == 404 and is_problem(answer), path
    # known to the store but with nothing on sale yet: an empty menu, not a 404
    city = {"city_id": "bremen", "name": "Bremen", "timezone": "Europe/Berlin"}
    position = api.client.post("/cities", json=city, headers=headers).json()["position"]
    empty = api.client.get(
        "/cities/bremen/menu", params={"min_position": position}, headers=headers
    )
    assert empty.status_code == 200 and empty.json()["items"] == []


def test_the_city_menu_and_venues_page_with_a_cursor(live_api: Api) -> None:
    api, world = live_api, live_api.world
    headers = api.as_(Role.CUSTOMER, "ana")
    at = {"min_position": api.side.store.position()}
    first = api.client.get(
        f"/cities/{world.city_id}/menu", params={**at, "limit": 1}, headers=headers
    )
    assert first.status_code == 200
    meals = sorted([world.soup, world.salad])
    assert [m["meal_id"] for m in first.json()["items"]] == meals[:1]
    assert first.json()["items"][0]["venues"] == [world.venue_id]
    rest = api.client.get(
        f"/cities/{world.city_id}/menu",
        params={**at, "limit": 1, "after": first.json()["next"]},
        headers=headers,
    )
    assert [m["meal_id"] for m in rest.json()["items"]] == meals[1:]
    assert rest.json()["next"] is None

    venues = api.client.get(f"/cities/{world.city_id}/venues", params=at, headers=headers)
    assert venues.json()["items"] == [{"venue_id": world.venue_id, "name": "Gym"}]
    assert venues.json()["next"] is None
    bad = api.client.get(
        f"/cities/{world.city_id}/venues", params={"after": "!!not-ours"}, headers=headers
    )
    assert bad.status_code == 422 and is_problem(bad)


def test_a_customer_pages_through_their_own_orders_newest_first(live_api: Api) -> None:
    api, world = live_api, live_api.world
    clock = api.side.clock
    assert isinstance(clock, FakeClock)
    ids = []
    for key in ("k1", "k2", "k3"):
        ids.append(api.order("ana", key, {world.soup: 1}).json()["order_id"])
        clock.advance(minutes=1)
    last = api.order("bob", "k1", {world.soup: 1}).json()["position"]

    headers = api.as_(Role.CUSTOMER, "ana")
    first = api.client.get(
        "/customers/me/orders", params={"limit": 2, "min_position": last}, headers=headers
    )
    assert first.status_code == 200, first.text
    assert [o["order_id"] for o in first.json()["items"]] == [ids[2], ids[1]]
    assert first.json()["items"][0]["history"][0]["status"] == "placed"
    assert first.headers["Cache-Control"] == "private, no-cache"
    rest = api.client.get(
        "/customers/me/orders", params={"limit": 2, "after": first.json()["next"]}, headers=headers
    )
    assert [o["order_id"] for o in rest.json()["items"]] == [ids[0]]
    assert rest.json()["next"] is None
    bobs = api.client.get("/customers/me/orders", headers=api.as_(Role.CUSTOMER, "bob"))
    assert len(bobs.json()["items"]) == 1


def test_the_kitchen_reads_the_refill_plan(live_api: Api) -> None:
    api, world = live_api, live_api.world
    at = {"min_position": api.side.store.position(), "days": 7}
    plan = api.client.get("/kitchen/refill-plan", params=at, headers=api.as_(Role.KITCHEN))
    assert plan.status_code == 200, plan.text
    lines = [line for line in plan.json()["items"] if line["fridge_id"] == world.fridge_id]
    assert {line["meal_id"]: line["sellable_tomorrow"] for line in lines} == {
        world.soup: 10,
        world.salad: 5,
    }
    too_long = api.client.get(
        "/kitchen/refill-plan", params={"days": 99}, headers=api.as_(Role.KITCHEN)
    )
    assert too_long.status_code == 422


def test_ready_with_running_workers_and_lag_in_metrics(live_api: Api) -> None:
    ready = live_api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = live_api.client.get("/metrics").text
    assert 'farmacy_projection_lag_events{projection="venue_menu",shard="0/1"}' in metrics
    assert 'farmacy_projection_lag_seconds{projection="orders",shard="0/1"}' in metrics


def test_without_workers_the_api_is_not_ready_and_says_why(api: Api) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and is_problem(ready)
    assert ready.headers["Retry-After"]
    assert any("venue_menu" in reason for reason in ready.json()["reasons"])
    # and reads say the model is not built rather than failing
    answer = menu(api)
    assert answer.status_code == 503 and is_problem(answer)


def test_the_demo_curls_work_as_printed(live_api: Api) -> None:
    """Every curl `farmacy run` prints is a request the API answers 2xx (ids of this world)."""
    import shlex

    from interfaces.http.demo import demo_lines

    api, world = live_api, live_api.world
    lines = demo_lines(
        "http://testserver.local",
        api.side.settings,
        city_id=world.city_id,
        venue_id=world.venue_id,
        fridge_id=world.fridge_id,
        meal_id=world.soup,
    )
    curls = [shlex.split(line.strip()) for line in lines if line.strip().startswith("curl")]
    assert len(curls) == 7
    for words in curls:
        url = words[-1].replace("POSITION", "0").removeprefix("http://testserver.local")
        method = words[words.index("-X") + 1] if "-X" in words else "GET"
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        body = words[words.index("-d") + 1] if "-d" in words else None
        answer = api.client.request(method, url, content=body, headers=headers)
        assert 200 <= answer.status_code < 300, (url, answer.text)
