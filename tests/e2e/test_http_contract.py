"""The HTTP contract as a strict client meets it (issue 11): every body decoded strictly, every
natural key created once, every failure a problem+json with a reason, on every store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role
from interfaces.http.bodies import InvalidBody, decode_strictly
from ops.demo import MEALS
from tests.conftest import unique
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import live_api

__all__ = ["api", "live_api"]

DEEP = 1_000


def nested(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def deep_body(field: str, body: dict[str, Any]) -> bytes:
    """`body` as JSON with `field` replaced by a list nested DEEP levels."""
    text = json.dumps({**body, field: "HERE"})
    return text.replace('"HERE"', nested()).encode()


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert is_problem(answer), answer.headers
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def delivery(api: Api, **fields: Any) -> dict[str, Any]:
    best_before = (api.side.clock() + timedelta(days=2)).date().isoformat()
    lines = [{"meal_id": api.world.salad, "quantity": 3}]
    return {"delivery_id": "d-1", "lines": lines, "best_before": best_before, **fields}


def deliver(api: Api, body: dict[str, Any] | bytes) -> httpx.Response:
    path = f"/fridges/{api.world.fridge_id}/deliveries"
    headers = api.as_(Role.KITCHEN)
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return api.client.post(path, content=body, headers=headers)
    return api.client.post(path, json=body, headers=headers)


def count(api: Api, body: dict[str, Any]) -> httpx.Response:
    fridge = api.world.fridge_id
    return api.client.post(
        f"/fridges/{fridge}/counts", json=body, headers=api.as_(Role.FRIDGE, fridge)
    )


# ---- bodies: one place maps every decoding failure ------------------------------------------


def refused_whole(answer: httpx.Response) -> None:
    """A deep body is JSON of the wrong shape: 422, as the README and the document say."""
    problem(answer, 422)


def test_a_body_nested_a_thousand_levels_deep_is_a_client_error_on_every_write_route(
    api: Api,
) -> None:
    order = {"fridge_id": api.world.fridge_id, "lines": []}
    placed = api.client.post(
        "/orders",
        content=deep_body("lines", order),
        headers={
            **api.as_(Role.CUSTOMER, "ana"),
            "Idempotency-Key": "k1",
            "Content-Type": "application/json",
        },
    )
    refused_whole(placed)
    refused_whole(deliver(api, deep_body("lines", delivery(api))))
    raw = deep_body("order_id", {"outcome": "authorised", "payment_ref": "p-1"})
    signed = api.client.post(
        "/payments/webhook",
        content=raw,
        headers={**api.signature(raw), "Content-Type": "application/json"},
    )
    refused_whole(signed)
    meal = {"meal_id": "m", "name": "M", "price": "1.00", "currency": "EUR"}
    operator = {**api.as_(Role.OPERATOR), "Content-Type": "application/json"}
    refused_whole(api.client.post("/meals", content=deep_body("details", meal), headers=operator))
    refused_whole(api.client.post("/meals", content=nested().encode(), headers=operator))


def test_a_depth_no_type_stops_is_422_not_a_recursion_error() -> None:
    with pytest.raises(InvalidBody, match="nested deeper than any request type"):
        decode_strictly(nested().encode(), Any)


def test_the_document_says_what_a_deep_body_is_answered(api: Api) -> None:
    place = api.client.get("/schema/openapi.json").json()["paths"]["/orders"]["post"]
    assert "nested" in place["responses"]["422"]["description"]
    assert "nested" not in place["responses"]["400"]["description"]


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    answer = deliver(api, b'{"delivery_id": ')
    assert "not JSON" in problem(answer, 400)["detail"]


def test_a_string_is_never_taken_for_a_number(api: Api) -> None:
    order = {
        "fridge_id": api.world.fridge_id,
        "lines": [{"meal_id": api.world.soup, "quantity": "1"}],
    }
    headers = {**api.as_(Role.CUSTOMER, "ana"), "Idempotency-Key": "k1"}
    refused = problem(api.client.post("/orders", json=order, headers=headers), 422)
    assert "Expected `int`, got `str`" in refused["detail"]
    report = {"report_id": "r-1", "taken_at": api.side.clock().isoformat()}
    problem(count(api, {**report, "counts": {api.world.soup: "7"}}), 422)
    problem(deliver(api, delivery(api, lines=[{"meal_id": api.world.salad, "quantity": 1.0}])), 422)
    # nothing was recorded meanwhile: the soup is all there
    assert api.order("ana", "k2", {api.world.soup: 10}).status_code == 201


# ---- natural keys: created once, a repeat is 200, another content 409 ----------------------


def test_a_delivery_repeated_is_200_and_its_id_reused_for_other_lines_is_409(api: Api) -> None:
    first = deliver(api, delivery(api))
    assert first.status_code == 201 and first.json()["recorded"] is True
    again = deliver(api, delivery(api))
    assert again.status_code == 200 and again.json()["recorded"] is False
    other = delivery(api, lines=[{"meal_id": api.world.salad, "quantity": 4}])
    assert "delivery d-1 already exists" in problem(deliver(api, other), 409)["detail"]
    # the salads delivered once: 5 + 3
    assert api.order("ana", "k1", {api.world.salad: 8}).status_code == 201
    assert api.order("ana", "k2", {api.world.salad: 1}).status_code == 409


def test_a_count_report_repeated_is_200_and_its_id_reused_for_other_counts_is_409(
    api: Api,
) -> None:
    report = {
        "report_id": "r-1",
        "taken_at": api.side.clock().isoformat(),
        "counts": {api.world.soup: 4},
    }
    assert count(api, report).status_code == 201
    again = count(api, report)
    assert again.status_code == 200 and again.json()["recorded"] is False
    problem(count(api, {**report, "counts": {api.world.soup: 9}}), 409)
    assert api.order("ana", "k1", {api.world.soup: 5}).status_code == 409


def test_the_catalogue_answers_a_different_repeat_409_for_every_kind(api: Api) -> None:
    operator = api.as_(Role.OPERATOR)
    venue = {"venue_id": api.world.venue_id, "city_id": api.world.city_id, "name": "Other"}
    problem(api.client.post("/venues", json=venue, headers=operator), 409)
    elsewhere = {"venue_id": unique("venue"), "city_id": api.world.city_id, "name": "Pool"}
    assert api.client.post("/venues", json=elsewhere, headers=operator).status_code == 201
    fridge = {"fridge_id": api.world.fridge_id, "venue_id": api.world.venue_id}
    assert api.client.post("/fridges", json=fridge, headers=operator).status_code == 200
    moved = {**fridge, "venue_id": elsewhere["venue_id"]}
    problem(api.client.post("/fridges", json=moved, headers=operator), 409)
    meal = {"meal_id": api.world.soup, "name": "Lentil soup", "price": "6.50", "currency": "EUR"}
    assert api.client.post("/meals", json=meal, headers=operator).status_code == 200
    problem(api.client.post("/meals", json={**meal, "price": "7.00"}, headers=operator), 409)


# ---- bounds ----------------------------------------------------------------------------------


def test_one_delivery_brings_no_more_than_a_count_can_report(api: Api) -> None:
    lines = [{"meal_id": api.world.salad, "quantity": 1000}] * 50
    refused = problem(deliver(api, delivery(api, lines=lines)), 422)
    assert "at most 10000" in refused["detail"]
    problem(
        count(
            api,
            {
                "report_id": "r-1",
                "taken_at": "2026-11-21T11:00:00Z",
                "counts": {api.world.salad: 10_001},
            },
        ),
        422,
    )
    assert deliver(api, delivery(api, lines=lines[:10])).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/cities", {"city_id": "c", "name": "x" * 201, "timezone": "Europe/Berlin"}),
        ("/cities", {"city_id": "c", "name": "C", "timezone": "E" * 65}),
        (
            "/meals",
            {
                "meal_id": "m",
                "name": "M",
                "price": "1.00",
                "currency": "EUR",
                "details": {"tags": ["t"] * 51},
            },
        ),
        (
            "/meals",
            {
                "meal_id": "m",
                "name": "M",
                "price": "1.00",
                "currency": "EUR",
                "details": {f"k{n}": 1 for n in range(51)},
            },
        ),
        (
            "/meals",
            {
                "meal_id": "m",
                "name": "M",
                "price": "1.00",
                "currency": "EUR",
                "details": {"kcal": 10**12},
            },
        ),
    ],
    ids=["long name", "long timezone", "long tag list", "many details", "huge figure"],
)
def test_every_string_list_and_number_has_an_upper_bound(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    problem(api.client.post(path, json=body, headers=api.as_(Role.OPERATOR)), 422)


def test_a_meal_with_details_shaped_like_the_demos_is_registered(api: Api) -> None:
    name, price, allergens, tags = MEALS["chicken-teriyaki"]
    meal = {
        "meal_id": unique("teriyaki"),
        "name": name,
        "price": price,
        "currency": "EUR",
        "details": {"allergens": allergens, "diet_tags": tags, "nutrition": {"kcal": 640}},
    }
    operator = api.as_(Role.OPERATOR)
    created = api.client.post("/meals", json=meal, headers=operator)
    assert created.status_code == 201, created.text
    assert api.client.post("/meals", json=meal, headers=operator).status_code == 200


# ---- reading: a position nobody was handed is the caller's mistake ---------------------------


def test_a_min_position_beyond_the_store_is_422_at_once_on_every_read_route(
    live_api: Api,
) -> None:
    api, world = live_api, live_api.world
    beyond = (api.side.store.position() or 0) + 1_000_000
    routes = [
        (f"/venues/{world.venue_id}/menu", Role.CUSTOMER, None),
        (f"/cities/{world.city_id}/menu", Role.CUSTOMER, None),
        (f"/cities/{world.city_id}/venues", Role.CUSTOMER, None),
        (f"/fridges/{world.fridge_id}/stock", Role.OPERATOR, None),
        ("/kitchen/refill-plan", Role.KITCHEN, None),
        ("/customers/me/orders", Role.CUSTOMER, "ana"),
    ]
    for path, role, subject in routes:
        answer = api.client.get(
            path, params={"min_position": beyond}, headers=api.as_(role, subject)
        )
        # not the 503 "read model behind" that waiting in vain would end in
        body = problem(answer, 422)
        assert "beyond the newest position" in body["detail"], path
        assert body["position"] == api.side.store.position()
    reached = api.client.get(
        f"/venues/{world.venue_id}/menu",
        params={"min_position": api.side.store.position()},
        headers=api.as_(Role.CUSTOMER),
    )
    assert reached.status_code == 200


# ---- the OpenAPI document tells the truth ----------------------------------------------------


def test_the_document_lists_every_status_as_problem_json_with_headers_and_roles(
    api: Api,
) -> None:
    document = api.client.get("/schema/openapi.json").json()
    place = document["paths"]["/orders"]["post"]
    assert set(place["responses"]) == {
        "200", "201", "400", "401", "403", "404", "409", "422", "503"
    }  # fmt: skip
    for status in ("400", "401", "403", "404", "409", "422", "503"):
        content = place["responses"][status]["content"]
        assert list(content) == ["application/problem+json"], status
        assert content["application/problem+json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    problem_schema = document["components"]["schemas"]["Problem"]
    assert {"status", "title", "detail"} <= set(problem_schema["required"])
    assert place["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert {"name": "Idempotency-Key", "in": "header", "required": True}.items() <= next(
        p for p in place["parameters"] if p["name"] == "Idempotency-Key"
    ).items()
    assert place["security"] == [{"BearerToken": ["customer"]}]
    deliveries = document["paths"]["/fridges/{fridge_id}/deliveries"]["post"]
    assert deliveries["security"] == [{"BearerToken": ["kitchen", "operator"]}]
    assert {"200", "201", "409"} <= set(deliveries["responses"])
    webhook = document["paths"]["/payments/webhook"]["post"]
    assert webhook["security"] == [{"PaymentSignature": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    validation = [
        response
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
        for response in operation["responses"].values()
        if "application/json" in response.get("content", {})
        and "status_code" in json.dumps(response["content"]["application/json"])
    ]
    assert validation == []  # Litestar's own {status_code, detail, extra} is answered nowhere
