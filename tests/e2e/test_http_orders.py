"""An order is readable the moment its 201 is answered, before fulfilment has run at all.

The read models' workers run (as in production); the fulfilment process manager does not,
so the `Order` stream does not exist yet: what the customer reads comes from the fridge's
reservation, through the orders model.
"""

from __future__ import annotations

from datetime import datetime

from application.errors import NotFound
from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api
from tests.e2e.http_reading import live_api

__all__ = ["api", "live_api"]


def test_an_order_is_readable_right_after_its_201_before_fulfilment_ran(live_api: Api) -> None:
    api = live_api
    placed = api.order("ana", "k1", {api.world.soup: 2})
    assert placed.status_code == 201, placed.text
    order_id, position = placed.json()["order_id"], placed.json()["position"]
    try:
        api.side.ordering.order(order_id)
        raise AssertionError("fulfilment opened the order: this test needs it not to have")
    except NotFound:
        pass
    ana = api.as_(Role.CUSTOMER, "ana")

    seen = api.client.get(f"/orders/{order_id}", headers=ana)  # no min_position at all

    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["order_id"], body["status"], body["total"]) == (order_id, "placed", "13.00")
    assert body["lines"] == [{"meal_id": api.world.soup, "quantity": 2, "unit_price": "6.50"}]
    assert body["position"] >= position and body["as_of"] is not None
    assert [step["status"] for step in body["history"]] == ["placed"]
    listed = api.client.get("/customers/me/orders", params={"min_position": position}, headers=ana)
    assert listed.status_code == 200
    assert [item["order_id"] for item in listed.json()["items"]] == [order_id]
    # One order, one way of writing its times, in both answers.
    assert listed.json()["items"][0]["placed_at"] == body["placed_at"]
    assert datetime.fromisoformat(body["payment_due_by"]).utcoffset() is not None
    # ... and the way the 201 wrote them.
    assert body["payment_due_by"] == placed.json()["payment_due_by"]


def test_a_customer_cancels_right_after_the_201_and_the_meals_are_back(live_api: Api) -> None:
    api = live_api
    order_id = api.order("ana", "k1", {api.world.soup: 10}).json()["order_id"]
    ana = api.as_(Role.CUSTOMER, "ana")

    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=ana)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert api.order("bob", "k1", {api.world.soup: 10}).status_code == 201
    seen = api.client.get(
        f"/orders/{order_id}", params={"min_position": cancelled.json()["position"]}, headers=ana
    )
    assert seen.json()["status"] == "cancelled"


def test_an_order_nobody_placed_is_404_once_the_model_has_everything(live_api: Api) -> None:
    api = live_api
    missing = api.client.get(
        "/orders/00000000-0000-0000-0000-000000000000", headers=api.as_(Role.OPERATOR)
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_a_paid_order_cancelled_before_pickup_is_refunded_and_its_meals_are_back(
    live_api: Api,
) -> None:
    api = live_api
    order_id = api.order("ana", "k1", {api.world.soup: 10}).json()["order_id"]
    api.side.ordering.ensure_order(order_id, api.world.fridge_id)
    api.side.ordering.authorise_payment(order_id, "psp-ana")  # as the processor's webhook would
    ana = api.as_(Role.CUSTOMER, "ana")

    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=ana)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "refunded"
    assert api.order("bob", "k1", {api.world.soup: 10}).status_code == 201
    seen = api.client.get(
        f"/orders/{order_id}", params={"min_position": cancelled.json()["position"]}, headers=ana
    )
    assert seen.json()["status"] == "refunded"
    assert "cancelled" in seen.json()["history"][-1]["detail"]
