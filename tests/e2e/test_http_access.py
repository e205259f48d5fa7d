"""Who may do what, and how bad input is answered: every route, every role, never a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from interfaces.http.auth import Role, issue_token
from tests.conftest import unique
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.http_reading import live_api

__all__ = ["api", "live_api"]

C, K, F, OP, P = Role.CUSTOMER, Role.KITCHEN, Role.FRIDGE, Role.OPERATOR, Role.PAYMENT
OWN_FRIDGE, OTHER_FRIDGE = "own fridge", "other fridge"
CALLERS: list[Any] = [C, K, OWN_FRIDGE, OTHER_FRIDGE, OP, P]
EVERYONE = set(CALLERS)


@dataclass
class Route:
    method: str
    path: Callable[[Api, str], str]
    body: Callable[[Api], Any]
    allowed: set[Any]


def delivery(a: Api) -> dict[str, Any]:
    best_before = (a.side.clock() + timedelta(days=2)).date().isoformat()
    lines = [{"meal_id": a.world.soup, "quantity": 1}]
    return {"delivery_id": unique("d"), "lines": lines, "best_before": best_before}


def none(a: Api) -> None:
    return None


def count(a: Api) -> dict[str, Any]:
    taken_at = a.side.clock().isoformat()
    return {"report_id": unique("r"), "taken_at": taken_at, "counts": {a.world.soup: 10}}


ROUTES = {
    "place order": Route(
        "POST",
        lambda a, o: "/orders",
        lambda a: {
            "fridge_id": a.world.fridge_id,
            "lines": [{"meal_id": a.world.soup, "quantity": 1}],
        },
        {C},
    ),
    "see order": Route("GET", lambda a, o: f"/orders/{o}", lambda a: None, {C, OP}),
    "cancel order": Route("POST", lambda a, o: f"/orders/{o}/cancel", lambda a: None, {C, OP}),
    "deliver": Route(
        "POST", lambda a, o: f"/fridges/{a.world.fridge_id}/deliveries", delivery, {K, OP}
    ),
    "count": Route(
        "POST", lambda a, o: f"/fridges/{a.world.fridge_id}/counts", count, {OWN_FRIDGE, OP}
    ),
    "pick up": Route(
        "POST",
        lambda a, o: f"/fridges/{a.world.fridge_id}/pickups",
        lambda a: {"order_id": "00000000-0000-0000-0000-000000000000"},
        {OWN_FRIDGE, OP},
    ),
    "city": Route(
        "POST",
        lambda a, o: "/cities",
        lambda a: {"city_id": a.world.city_id, "name": "Berlin", "timezone": "Europe/Berlin"},
        {OP},
    ),
    "venue": Route(
        "POST",
        lambda a, o: "/venues",
        lambda a: {"venue_id": a.world.venue_id, "city_id": a.world.city_id, "name": "Gym"},
        {OP},
    ),
    "fridge": Route(
        "POST",
        lambda a, o: "/fridges",
        lambda a: {"fridge_id": a.world.fridge_id, "venue_id": a.world.venue_id},
        {OP},
    ),
    "meal": Route(
        "POST",
        lambda a, o: "/meals",
        lambda a: {
            "meal_id": a.world.soup,
            "name": "Lentil soup",
            "price": "6.50",
            "currency": "EUR",
        },
        {OP},
    ),
    # reading: menus, venues and stock for any signed-in caller (a fridge: its own stock)
    "venue menu": Route("GET", lambda a, o: f"/venues/{a.world.venue_id}/menu", none, EVERYONE),
    "city menu": Route("GET", lambda a, o: f"/cities/{a.world.city_id}/menu", none, EVERYONE),
    "city venues": Route("GET", lambda a, o: f"/cities/{a.world.city_id}/venues", none, EVERYONE),
    "fridge stock": Route(
        "GET",
        lambda a, o: f"/fridges/{a.world.fridge_id}/stock",
        none,
        EVERYONE - {OTHER_FRIDGE},
    ),
    "refill plan": Route("GET", lambda a, o: "/kitchen/refill-plan", none, {K, OP}),
    "my orders": Route("GET", lambda a, o: "/customers/me/orders", none, {C}),
}
PUBLIC = ["/healthz", "/readyz", "/metrics", "/schema", "/schema/openapi.json"]


def headers_for(a: Api, caller: Any) -> dict[str, str]:
    if caller == OWN_FRIDGE:
        return a.as_(F, a.world.fridge_id)
    if caller == OTHER_FRIDGE:
        return a.as_(F, "some-other-fridge")
    subject = "ana" if caller is C else None
    return {**a.as_(caller, subject), "Idempotency-Key": unique("key")}


def test_every_route_answers_every_role_as_documented(live_api: Api) -> None:
    api = live_api
    order_id = api.order("ana", "k-matrix", {api.world.soup: 1}).json()["order_id"]
    wrong_secret = issue_token("not-the-secret-but-long-enough-for-hs256", OP, "mallory")
    for name, route in ROUTES.items():
        path = route.path(api, order_id)

        def call(
            headers: dict[str, str], route: Route = route, path: str = path, name: str = name
        ) -> int:
            answer = api.client.request(route.method, path, json=route.body(api), headers=headers)
            assert answer.status_code < 500, (name, answer.text)
            if answer.status_code >= 400:
                assert is_problem(answer), (name, answer.text)
            return answer.status_code

        assert call({}) == 401, name
        assert call({"Authorization": "Bearer not-a-jwt"}) == 401, name
        assert call({"Authorization": f"Bearer {wrong_secret}"}) == 401, name
        for caller in CALLERS:
            status = call(headers_for(api, caller))
            if caller in route.allowed:
                assert status not in (401, 403), (name, caller, status)
                if route.method == "GET":
                    assert status == 200, (name, caller, status)
            else:
                assert status == 403, (name, caller, status)
    for path in PUBLIC:
        assert api.client.get(path).status_code == 200, path


def test_a_token_without_a_known_role_is_401(api: Api) -> None:
    token = issue_token(api.secret, "admin", "eve")  # type: ignore[arg-type]
    answer = api.client.get("/healthz", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200  # public routes ignore tokens
    cities = api.client.post("/cities", json={}, headers={"Authorization": f"Bearer {token}"})
    assert cities.status_code == 401


def test_the_webhook_is_guarded_by_its_signature_not_a_role(api: Api) -> None:
    order_id = api.opened(api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"])
    body = {"order_id": order_id, "outcome": "declined", "payment_ref": "p-9"}
    assert api.webhook(body).status_code == 200
    token = api.as_(OP)
    unsigned = api.client.post("/payments/webhook", json=body, headers=token)
    assert unsigned.status_code == 401 and is_problem(unsigned)


BAD_ORDERS: list[tuple[str, Any]] = [
    ("malformed json", b'{"fridge_id": '),
    ("not an object", b"[1, 2, 3]"),
    ("wrong types", {"fridge_id": 7, "lines": "soup"}),
    ("negative quantity", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": -1}]}),
    ("zero quantity", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 0}]}),
    ("fraction", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 1.5}]}),
    ("huge quantity", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 10**30}]}),
    ("bad fridge id", {"fridge_id": "Fridge 1!", "lines": [{"meal_id": "soup", "quantity": 1}]}),
    ("bad meal id", {"fridge_id": "f-1", "lines": [{"meal_id": "../x", "quantity": 1}]}),
    ("no lines", {"fridge_id": "f-1", "lines": []}),
    ("unknown field", {"fridge_id": "f-1", "lines": [], "discount": "100%"}),
    ("missing field", {"lines": [{"meal_id": "soup", "quantity": 1}]}),
]


@pytest.mark.parametrize(("case", "body"), BAD_ORDERS, ids=[case for case, _ in BAD_ORDERS])
def test_bad_orders_are_problems_never_5xx(api: Api, case: str, body: Any) -> None:
    headers = {**api.as_(C, "ana"), "Idempotency-Key": "k1", "Content-Type": "application/json"}
    raw = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
    answer = api.client.post("/orders", content=raw, headers=headers)
    assert 400 <= answer.status_code < 500, (case, answer.text)
    assert is_problem(answer)
    assert "Traceback" not in answer.text and "File " not in answer.text


def test_bad_fridge_input_is_a_problem(api: Api) -> None:
    fridge = api.world.fridge_id
    naive = {"report_id": "r-1", "taken_at": "2026-11-21T11:00:00", "counts": {"soup": 1}}
    answer = api.client.post(f"/fridges/{fridge}/counts", json=naive, headers=api.as_(OP))
    assert answer.status_code == 422 and is_problem(answer)
    negative = {**naive, "taken_at": "2026-11-21T11:00:00Z", "counts": {"soup": -1}}
    answer = api.client.post(f"/fridges/{fridge}/counts", json=negative, headers=api.as_(OP))
    assert answer.status_code == 422
    answer = api.client.post("/fridges/BAD%20ID/deliveries", json={}, headers=api.as_(OP))
    assert 400 <= answer.status_code < 500 and is_problem(answer)
    answer = api.client.get("/orders/not-an-order", headers=api.as_(C, "ana"))
    assert 400 <= answer.status_code < 500 and is_problem(answer)
    bad_meal = {"meal_id": "m-1", "name": "X", "price": "-1", "currency": "EUR"}
    assert api.client.post("/meals", json=bad_meal, headers=api.as_(OP)).status_code == 422
