"""Who may do what, and how bad input is answered: every route, every role, never a 5xx."""

from __future__ import annotations

import itertools
import json
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
    allowed: dict[Any, int]
    """Each caller allowed, and the status the README documents for what it sends."""


def every(callers: set[Any], status: int = 200) -> dict[Any, int]:
    return dict.fromkeys(callers, status)


def delivery(a: Api) -> dict[str, Any]:
    best_before = (a.side.clock() + timedelta(days=2)).date().isoformat()
    lines = [{"meal_id": a.world.soup, "quantity": 1}]
    return {"delivery_id": unique("d"), "lines": lines, "best_before": best_before}


def none(a: Api) -> None:
    return None


REPORTS = itertools.count(1)


def count(a: Api) -> dict[str, Any]:
    """A new report, taken after the one before: recorded (201), not ignored as older."""
    taken_at = a.side.clock() - timedelta(hours=1) + timedelta(seconds=next(REPORTS))
    body = {"report_id": unique("r"), "taken_at": taken_at.isoformat()}
    return {**body, "counts": {a.world.soup: 10}}


ROUTES = {
    "place order": Route(
        "POST",
        lambda a, o: "/orders",
        lambda a: {
            "fridge_id": a.world.fridge_id,
            "lines": [{"meal_id": a.world.soup, "quantity": 1}],
        },
        {C: 201},  # a new key each time: a new order
    ),
    "place order at its fridge": Route(
        "POST",
        lambda a, o: f"/fridges/{a.world.fridge_id}/orders",
        lambda a: {"lines": [{"meal_id": a.world.soup, "quantity": 1}]},
        {C: 201},
    ),
    "see order": Route("GET", lambda a, o: f"/orders/{o}", lambda a: None, every({C, OP})),
    # the customer cancels their order; the operator's cancel repeats it: the same answer
    "cancel order": Route(
        "POST", lambda a, o: f"/orders/{o}/cancel", lambda a: None, every({C, OP})
    ),
    "deliver": Route(
        "POST",
        lambda a, o: f"/fridges/{a.world.fridge_id}/deliveries",
        delivery,
        every({K, OP}, 201),
    ),
    "count": Route(
        "POST",
        lambda a, o: f"/fridges/{a.world.fridge_id}/counts",
        count,
        every({OWN_FRIDGE, OP}, 201),
    ),
    "pick up": Route(
        "POST",
        lambda a, o: f"/fridges/{a.world.fridge_id}/pickups",
        lambda a: {"order_id": "00000000-0000-0000-0000-000000000000"},
        every({OWN_FRIDGE, OP}, 404),  # let through, and told there is no such order
    ),
    "city": Route(
        "POST",
        lambda a, o: "/cities",
        lambda a: {"city_id": a.world.city_id, "name": "Berlin", "timezone": "Europe/Berlin"},
        {OP: 200},  # the world registered it with this content: a repeat
    ),
    "venue": Route(
        "POST",
        lambda a, o: "/venues",
        lambda a: {"venue_id": a.world.venue_id, "city_id": a.world.city_id, "name": "Gym"},
        {OP: 200},  # the world registered it with this content: a repeat
    ),
    "fridge": Route(
        "POST",
        lambda a, o: "/fridges",
        lambda a: {"fridge_id": a.world.fridge_id, "venue_id": a.world.venue_id},
        {OP: 200},  # the world registered it with this content: a repeat
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
        {OP: 200},  # the world registered it with this content: a repeat
    ),
    # reading: menus, venues and stock for any signed-in caller (a fridge: its own stock)
    "venue menu": Route(
        "GET", lambda a, o: f"/venues/{a.world.venue_id}/menu", none, every(EVERYONE)
    ),
    "city menu": Route(
        "GET", lambda a, o: f"/cities/{a.world.city_id}/menu", none, every(EVERYONE)
    ),
    "city venues": Route(
        "GET", lambda a, o: f"/cities/{a.world.city_id}/venues", none, every(EVERYONE)
    ),
    "fridge stock": Route(
        "GET",
        lambda a, o: f"/fridges/{a.world.fridge_id}/stock",
        none,
        every(EVERYONE - {OTHER_FRIDGE}),
    ),
    "refill plan": Route("GET", lambda a, o: "/kitchen/refill-plan", none, every({K, OP})),
    "my orders": Route("GET", lambda a, o: "/customers/me/orders", none, {C: 200}),
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
    operator = issue_token(api.secret, OP, "op-1")  # valid, and allowed on most routes
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
        for scheme in ("Basic", "Token", "JWT"):  # only Bearer carries a token
            assert call({"Authorization": f"{scheme} {operator}"}) == 401, (name, scheme)
        assert call({"Authorization": operator}) == 401, name  # no scheme at all
        for caller in CALLERS:
            status = call(headers_for(api, caller))
            assert status == route.allowed.get(caller, 403), (name, caller, status)
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


BAD_ORDERS: list[tuple[str, Any, int]] = [
    # the README: 400 if not JSON, 422 if not the documented shape
    ("malformed json", b'{"fridge_id": ', 400),
    ("not utf-8", b'{"fridge_id": "\xff"}', 400),
    ("not an object", b"[1, 2, 3]", 422),
    ("wrong types", {"fridge_id": 7, "lines": "soup"}, 422),
    (
        "negative quantity",
        {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": -1}]},
        422,
    ),
    ("zero quantity", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 0}]}, 422),
    ("fraction", {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 1.5}]}, 422),
    (
        "huge quantity",
        {"fridge_id": "f-1", "lines": [{"meal_id": "soup", "quantity": 10**30}]},
        422,
    ),
    (
        "bad fridge id",
        {"fridge_id": "Fridge 1!", "lines": [{"meal_id": "soup", "quantity": 1}]},
        422,
    ),
    ("bad meal id", {"fridge_id": "f-1", "lines": [{"meal_id": "../x", "quantity": 1}]}, 422),
    ("no lines", {"fridge_id": "f-1", "lines": []}, 422),
    ("unknown field", {"fridge_id": "f-1", "lines": [], "discount": "100%"}, 422),
    ("missing field", {"lines": [{"meal_id": "soup", "quantity": 1}]}, 422),
]


@pytest.mark.parametrize(
    ("case", "body", "status"), BAD_ORDERS, ids=[case for case, _, _ in BAD_ORDERS]
)
def test_bad_orders_are_the_documented_problem(api: Api, case: str, body: Any, status: int) -> None:
    headers = {**api.as_(C, "ana"), "Idempotency-Key": "k1", "Content-Type": "application/json"}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = api.client.post("/orders", content=raw, headers=headers)
    assert answer.status_code == status, (case, answer.text)
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
    assert answer.status_code == 422 and is_problem(answer)  # a path parameter of bad shape
    answer = api.client.get("/orders/not-an-order", headers=api.as_(C, "ana"))
    assert answer.status_code == 422 and is_problem(answer)
    bad_meal = {"meal_id": "m-1", "name": "X", "price": "-1", "currency": "EUR"}
    assert api.client.post("/meals", json=bad_meal, headers=api.as_(OP)).status_code == 422


def test_a_201_says_where_the_new_thing_is_read(api: Api) -> None:
    placed = api.order("ana", "k-where", {api.world.soup: 1})
    assert placed.status_code == 201
    where = placed.headers["Location"]
    assert where == f"/orders/{placed.json()['order_id']}"
    repeated = api.order("ana", "k-where", {api.world.soup: 1})
    assert repeated.status_code == 200 and "Location" not in repeated.headers
    operator = api.as_(OP)
    city = {"city_id": "oslo", "name": "Oslo", "timezone": "Europe/Oslo"}
    created = {
        "/cities": (city, "/cities/oslo/venues"),
        "/venues": (
            {"venue_id": "oslo-gym", "city_id": "oslo", "name": "Gym"},
            "/venues/oslo-gym/menu",
        ),
        "/fridges": (
            {"fridge_id": "oslo-gym-1", "venue_id": "oslo-gym"},
            "/fridges/oslo-gym-1/stock",
        ),
    }
    for path, (body, location) in created.items():
        answer = api.client.post(path, json=body, headers=operator)
        assert answer.status_code == 201 and answer.headers["Location"] == location, path
    schema = api.client.get("/schema/openapi.json").json()["paths"]
    assert "Location" in schema["/orders"]["post"]["responses"]["201"]["headers"]
    assert "Location" in schema["/fridges"]["post"]["responses"]["201"]["headers"]
    deliveries = schema["/fridges/{fridge_id}/deliveries"]["post"]["responses"]["201"]
    assert not deliveries.get("headers") and "URL follows" not in deliveries["description"]
