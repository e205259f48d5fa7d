"""`PUT /meals/{meal_id}/price`: an operator sets a meal's price; menus show it once their
models have the event, orders placed after it pay it, orders placed before keep theirs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import live_api, menu

__all__ = ["api", "live_api"]


def reprice(a: Api, meal_id: str, price: Any, role: Role | None = Role.OPERATOR) -> httpx.Response:
    return a.client.put(f"/meals/{meal_id}/price", json={"price": price}, headers=a.as_(role))


def refused(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert is_problem(answer), answer.headers
    detail: str = answer.json()["detail"]
    assert detail
    return detail


def test_an_operator_sets_a_price_and_a_repeat_changes_nothing(api: Api) -> None:
    set_ = reprice(api, api.world.soup, "7.20")
    assert set_.status_code == 200, set_.text
    body = set_.json()
    assert {k: body[k] for k in ("meal_id", "price", "currency", "changed")} == {
        "meal_id": api.world.soup,
        "price": "7.20",
        "currency": "EUR",
        "changed": True,
    }
    assert body["position"] > 0
    again = reprice(api, api.world.soup, "7.2")
    assert again.status_code == 200
    assert again.json()["changed"] is False and again.json()["price"] == "7.20"


@pytest.mark.parametrize(
    ("price", "why"),
    [("-1.00", "negative"), ("7.205", "three decimals"), (7.2, "a number, not a string"),
     ("", "empty"), ("12345678.00", "too large")],
)  # fmt: skip
def test_a_malformed_price_is_refused_with_a_reason(api: Api, price: Any, why: str) -> None:
    refused(reprice(api, api.world.soup, price), 422)


def test_an_unknown_meal_and_other_roles_are_refused(api: Api) -> None:
    assert "no-such-meal" in refused(reprice(api, "no-such-meal", "5.00"), 404)
    refused(reprice(api, "Not_An_Id", "5.00"), 422)
    for role in (Role.CUSTOMER, Role.KITCHEN, Role.SUBSYSTEM):
        refused(reprice(api, api.world.soup, "5.00", role), 403)
    refused(reprice(api, api.world.soup, "5.00", None), 401)
    extra = api.client.put(
        f"/meals/{api.world.soup}/price",
        json={"price": "5.00", "currency": "GBP"},
        headers=api.as_(Role.OPERATOR),
    )
    refused(extra, 422)  # the currency is the meal's: a price cannot change it


def test_orders_after_a_reprice_pay_it_and_earlier_orders_keep_theirs(live_api: Api) -> None:
    api, soup = live_api, live_api.world.soup
    before = api.order("ana", "k-before", {soup: 2})
    assert before.status_code == 201 and before.json()["total"] == "13.00"  # 2 x 6.50
    set_ = reprice(api, soup, "7.20")
    assert set_.status_code == 200
    api.side.prices.refresh()  # the API's price list follows the store (max_age 0.1 s)

    after = api.order("bob", "k-after", {soup: 2})
    assert after.status_code == 201 and after.json()["total"] == "14.40"

    shown = menu(api, min_position=set_.json()["position"])
    assert shown.status_code == 200, shown.text
    item = next(i for i in shown.json()["items"] if i["meal_id"] == soup)
    assert item["price"] == "7.20"
    mine = api.client.get(
        f"/orders/{before.json()['order_id']}", headers=api.as_(Role.CUSTOMER, "ana")
    )
    assert mine.status_code == 200, mine.text
    assert mine.json()["total"] == "13.00"
    assert [line["unit_price"] for line in mine.json()["lines"]] == ["6.50"]


def test_the_document_lists_the_route_for_operators_with_its_problems(api: Api) -> None:
    document = api.client.get("/schema/openapi.json").json()
    route = document["paths"]["/meals/{meal_id}/price"]["put"]
    assert route["security"] == [{"BearerToken": ["operator"]}]
    assert {"200", "401", "403", "404", "422"} <= set(route["responses"])
