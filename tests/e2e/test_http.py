"""The HTTP API as its clients use it, on every store."""

from __future__ import annotations

from datetime import timedelta

from interfaces.http.auth import Role
from tests.conftest import unique
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import live_api

__all__ = ["api", "live_api"]


def test_a_customer_orders_sees_the_order_and_cancels(live_api: Api) -> None:
    api = live_api
    placed = api.order("ana", "k1", {api.world.soup: 2})
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "placed" and body["total"] == "13.00"
    assert body["payment_due_by"] and isinstance(body["position"], int)
    order_id = body["order_id"]

    seen = api.client.get(f"/orders/{order_id}", headers=api.as_(Role.CUSTOMER, "ana"))
    assert seen.status_code == 200
    assert seen.json()["lines"] == [
        {"meal_id": api.world.soup, "quantity": 2, "unit_price": "6.50"}
    ]

    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=api.as_(Role.CUSTOMER, "ana"))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["position"] > body["position"]
    # the meals are back on sale: all ten soups can be ordered now
    assert api.order("ana", "k2", {api.world.soup: 10}).status_code == 201


def test_another_customers_order_is_not_found(live_api: Api) -> None:
    api = live_api
    order_id = api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"]
    for path in (f"/orders/{order_id}",):
        answer = api.client.get(path, headers=api.as_(Role.CUSTOMER, "bob"))
        assert answer.status_code == 404 and is_problem(answer)
    cancel = api.client.post(f"/orders/{order_id}/cancel", headers=api.as_(Role.CUSTOMER, "bob"))
    assert cancel.status_code == 404
    assert api.client.get(f"/orders/{order_id}", headers=api.as_(Role.OPERATOR)).status_code == 200


def test_sold_out_is_409_with_what_is_available(api: Api) -> None:
    answer = api.order("ana", "k1", {api.world.salad: 6, api.world.soup: 1})
    assert answer.status_code == 409 and is_problem(answer)
    assert answer.json()["available"] == {api.world.salad: 5, api.world.soup: 10}


def test_the_same_key_and_body_is_the_same_order_another_body_is_422(api: Api) -> None:
    first = api.order("ana", "k1", {api.world.soup: 1})
    again = api.order("ana", "k1", {api.world.soup: 1})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["order_id"] == first.json()["order_id"]
    other = api.order("ana", "k1", {api.world.soup: 2})
    assert other.status_code == 422 and is_problem(other)
    # the same key from another customer is another order
    bob = api.order("bob", "k1", {api.world.soup: 1})
    assert bob.status_code == 201 and bob.json()["order_id"] != first.json()["order_id"]


def test_an_order_without_an_idempotency_key_is_refused(api: Api) -> None:
    body = {"fridge_id": api.world.fridge_id, "lines": [{"meal_id": api.world.soup, "quantity": 1}]}
    answer = api.client.post("/orders", json=body, headers=api.as_(Role.CUSTOMER, "ana"))
    assert answer.status_code == 422 and is_problem(answer)


def test_a_kitchen_delivery_adds_stock_once(api: Api) -> None:
    fridge = api.world.fridge_id
    best_before = (api.side.clock() + timedelta(days=2)).date().isoformat()
    body = {
        "delivery_id": "d-42",
        "lines": [{"meal_id": api.world.salad, "quantity": 3}],
        "best_before": best_before,
    }
    first = api.client.post(
        f"/fridges/{fridge}/deliveries", json=body, headers=api.as_(Role.KITCHEN)
    )
    assert first.status_code == 201 and first.json()["recorded"] is True
    again = api.client.post(
        f"/fridges/{fridge}/deliveries", json=body, headers=api.as_(Role.KITCHEN)
    )
    assert again.status_code == 200 and again.json()["recorded"] is False
    assert api.order("ana", "k1", {api.world.salad: 8}).status_code == 201
    assert api.order("ana", "k2", {api.world.salad: 1}).status_code == 409


def test_a_fridge_count_reconciles_what_is_on_sale(api: Api) -> None:
    fridge = api.world.fridge_id
    body = {
        "report_id": "r-1",
        "taken_at": api.side.clock().isoformat(),
        "counts": {api.world.soup: 2, api.world.salad: 5},
    }
    counted = api.client.post(
        f"/fridges/{fridge}/counts", json=body, headers=api.as_(Role.FRIDGE, fridge)
    )
    assert counted.status_code == 201 and counted.json()["recorded"] is True
    short = api.order("ana", "k1", {api.world.soup: 3})
    assert short.status_code == 409 and short.json()["available"] == {api.world.soup: 2}


def test_paid_order_is_picked_up_at_its_fridge(api: Api) -> None:
    fridge = api.world.fridge_id
    order_id = api.opened(api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"])
    paid = api.webhook({"order_id": order_id, "outcome": "authorised", "payment_ref": "p-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "ready_for_pickup"
    taken = api.client.post(
        f"/fridges/{fridge}/pickups",
        json={"order_id": order_id},
        headers=api.as_(Role.FRIDGE, fridge),
    )
    assert taken.status_code == 201 and taken.json()["status"] == "picked_up"


def test_a_declined_payment_releases_the_meals(api: Api) -> None:
    order_id = api.opened(api.order("ana", "k1", {api.world.salad: 5}).json()["order_id"])
    declined = api.webhook({"order_id": order_id, "outcome": "declined", "payment_ref": "p-1"})
    assert declined.status_code == 200 and declined.json()["status"] == "payment_failed"
    assert api.order("ana", "k2", {api.world.salad: 5}).status_code == 201


def test_a_webhook_with_a_bad_signature_is_401_and_changes_nothing(live_api: Api) -> None:
    api = live_api
    order_id = api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"]
    body = {"order_id": order_id, "outcome": "authorised", "payment_ref": "p-1"}
    forged = api.webhook(body, secret="whsec_" + "bm90LXRoZS1zZWNyZXQtYnV0LWxvbmctZW5vdWdo")
    assert forged.status_code == 401 and is_problem(forged)
    unsigned = api.client.post("/payments/webhook", json=body)
    assert unsigned.status_code == 401
    seen = api.client.get(f"/orders/{order_id}", headers=api.as_(Role.CUSTOMER, "ana"))
    assert seen.json()["status"] == "placed"


def test_the_catalogue_creates_once_repeats_are_200_differences_409(api: Api) -> None:
    operator = api.as_(Role.OPERATOR)
    city = unique("city")
    body = {"city_id": city, "name": "Hamburg", "timezone": "Europe/Berlin"}
    assert api.client.post("/cities", json=body, headers=operator).status_code == 201
    assert api.client.post("/cities", json=body, headers=operator).status_code == 200
    different = api.client.post("/cities", json={**body, "name": "Bremen"}, headers=operator)
    assert different.status_code == 409 and is_problem(different)

    venue = unique("venue")
    venue_body = {"venue_id": venue, "city_id": city, "name": "Harbour gym"}
    assert api.client.post("/venues", json=venue_body, headers=operator).status_code == 201
    fridge = unique("fridge")
    fridge_body = {"fridge_id": fridge, "venue_id": venue}
    assert api.client.post("/fridges", json=fridge_body, headers=operator).status_code == 201
    meal = {"meal_id": unique("stew"), "name": "Stew", "price": "7.20", "currency": "EUR"}
    created = api.client.post("/meals", json=meal, headers=operator)
    assert created.status_code == 201 and created.json()["created"] is True
    orphan = {"venue_id": unique("venue"), "city_id": unique("nowhere"), "name": "Lost"}
    assert api.client.post("/venues", json=orphan, headers=operator).status_code == 404


def test_unknown_fridge_or_meal_is_404(api: Api) -> None:
    assert (
        api.order("ana", "k1", {api.world.soup: 1}, fridge_id="no-such-fridge").status_code == 404
    )
    assert api.order("ana", "k2", {"no-such-meal": 1}).status_code == 404


def test_operations_endpoints_are_public(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok", "position": None}
    # public, though not ready without workers (test_http_reading covers it with them)
    assert api.client.get("/readyz").status_code == 503
    schema = api.client.get("/schema/openapi.json").json()
    city_menu = {p["name"] for p in schema["paths"]["/cities/{city_id}/menu"]["get"]["parameters"]}
    assert {"min_position", "limit", "after"} <= city_menu
    place = schema["paths"]["/orders"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in place["parameters"]}
    line = schema["components"]["schemas"]["Line"]["properties"]
    assert line["quantity"]["exclusiveMinimum"] == 0
    assert line["meal_id"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,63}$"
    assert api.client.get("/schema").status_code == 200


def test_metrics_count_requests_orders_and_refusals(api: Api) -> None:
    api.order("ana", "k1", {api.world.soup: 1})
    api.order("ana", "k2", {api.world.soup: 100})
    metrics = api.client.get("/metrics").text
    assert (
        'farmacy_requests_total{app_name="farmacy",method="POST",path="/orders",status_code="409"}'
        in metrics
    )
    assert "farmacy_request_duration_seconds_bucket" in metrics
    assert "farmacy_orders_placed_total" in metrics
    assert "farmacy_orders_sold_out_total" in metrics
    assert "farmacy_fridge_write_conflicts_total" in metrics
    assert "farmacy_fridge_decisions_waiting 0.0" in metrics


def test_the_store_being_down_is_503_with_retry_after(api: Api) -> None:
    api.side.store.close()
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and is_problem(ready)
    assert ready.headers["Retry-After"]
