"""`POST /fridges/{fridge_id}/orders`: the same order as `POST /orders`, with the fridge in the
path for a load balancer to hash on; the same answers and the same `Idempotency-Key` rules."""

from __future__ import annotations

from typing import Any

import httpx

from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api, is_problem

__all__ = ["api"]


def at_fridge(
    a: Api, customer: str, key: str, lines: dict[str, int], fridge_id: str | None = None
) -> httpx.Response:
    body = {"lines": [{"meal_id": m, "quantity": q} for m, q in lines.items()]}
    headers = {**a.as_(Role.CUSTOMER, customer), "Idempotency-Key": key}
    return a.client.post(
        f"/fridges/{fridge_id or a.world.fridge_id}/orders", json=body, headers=headers
    )


def test_an_order_at_its_fridge_is_created_once_and_located(api: Api) -> None:
    placed = at_fridge(api, "ana", "k1", {api.world.soup: 2})
    assert placed.status_code == 201, placed.text
    order: dict[str, Any] = placed.json()
    assert placed.headers["Location"] == f"/orders/{order['order_id']}"
    assert order["status"] == "placed" and order["position"] > 0
    again = at_fridge(api, "ana", "k1", {api.world.soup: 2})
    assert again.status_code == 200 and again.json()["order_id"] == order["order_id"]


def test_both_routes_share_one_key_space(api: Api) -> None:
    """The same key and body by either route is the same order; another body is refused."""
    placed = at_fridge(api, "ana", "k1", {api.world.soup: 1})
    assert placed.status_code == 201
    same = api.order("ana", "k1", {api.world.soup: 1})
    assert same.status_code == 200 and same.json()["order_id"] == placed.json()["order_id"]
    other = at_fridge(api, "ana", "k1", {api.world.soup: 2})
    assert other.status_code == 422 and is_problem(other)
    assert at_fridge(api, "bob", "k1", {api.world.soup: 1}).status_code == 201  # bob's own key


def test_a_fridge_order_answers_as_post_orders_does(api: Api) -> None:
    sold_out = at_fridge(api, "ana", "k-big", {api.world.soup: 999})
    assert sold_out.status_code == 409 and is_problem(sold_out)
    assert set(sold_out.json()["available"]) == {api.world.soup}
    unknown = at_fridge(api, "ana", "k-2", {api.world.soup: 1}, fridge_id="no-such-fridge")
    assert unknown.status_code == 404 and is_problem(unknown)
    headers = {**api.as_(Role.CUSTOMER, "ana"), "Idempotency-Key": "k-3"}
    path = f"/fridges/{api.world.fridge_id}/orders"
    with_fridge = {
        "fridge_id": api.world.fridge_id,
        "lines": [{"meal_id": api.world.soup, "quantity": 1}],
    }
    assert api.client.post(path, json=with_fridge, headers=headers).status_code == 422
    assert api.client.post(path, json={"lines": []}, headers=headers).status_code == 422
    no_key = api.client.post(
        path,
        json={"lines": [{"meal_id": api.world.soup, "quantity": 1}]},
        headers=api.as_(Role.CUSTOMER, "ana"),
    )
    assert no_key.status_code == 422 and is_problem(no_key)
    kitchen = {**api.as_(Role.KITCHEN), "Idempotency-Key": "k-4"}
    refused = api.client.post(
        path, json={"lines": [{"meal_id": api.world.soup, "quantity": 1}]}, headers=kitchen
    )
    assert refused.status_code == 403
