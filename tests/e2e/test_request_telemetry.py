"""What operators read of each request: one log line, and the request metrics on /metrics.

A request handled by a route gives exactly one `request` line (method, route template, status,
duration, request id, the business ids of its path and of `note`) and nothing from its headers
or body; the request id is the caller's X-Request-Id or a new one, and the answer echoes it.
A write's line also has its correlation id (the caller's plain X-Correlation-Id, else the
request id), echoed too, and stored with the events the request records.
/metrics counts requests and times them per method, route template and status, under the
names dashboards use (`farmacy_requests_total`, `farmacy_request_duration_seconds`, ...).
The store plays no part in either, so these run on SQLite only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from domain.causes import Cause, cause_of
from domain.fridge import Fridge
from interfaces.http.auth import Role
from ops.settings import Settings
from tests.e2e.http_client import Api, api

__all__ = ["api"]

LINE_FIELDS = {"event", "log_level", "method", "route", "status", "duration_ms", "request_id"}
LABELS = ("app_name", "method", "path", "status_code")
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    return Settings(store="sqlite", data_dir=tmp_path)


def logged(send: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The answer to `send()` and the log lines written while it was answered."""
    with capture_logs() as lines:
        answer = send()
    return answer, lines


def one_request_line(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The request's line; a handler may log other events of its own."""
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 1, lines
    return requests[0]


def test_an_order_is_one_line_with_route_status_duration_request_id_and_its_ids(
    api: Api,
) -> None:
    token = api.as_(Role.CUSTOMER, "ana")
    answer, lines = logged(
        lambda: api.client.post(
            "/orders",
            json={
                "fridge_id": api.world.fridge_id,
                "lines": [{"meal_id": api.world.soup, "quantity": 1}],
            },
            headers={**token, "Idempotency-Key": "key-secret-1", "X-Request-Id": "req-42"},
        )
    )
    assert answer.status_code == 201, answer.text
    line = one_request_line(lines)
    assert set(line) == LINE_FIELDS | {"order_id", "fridge_id", "correlation_id"}
    assert line["method"] == "POST" and line["route"] == "/orders" and line["status"] == 201
    assert line["order_id"] == answer.json()["order_id"]
    assert line["fridge_id"] == api.world.fridge_id
    assert line["log_level"] == "info"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == "req-42" == answer.headers["X-Request-Id"]
    # no X-Correlation-Id sent: the order's conversation begins with this request
    assert line["correlation_id"] == "req-42" == answer.headers["X-Correlation-Id"]
    # nothing of the headers or the body: not the token, the key, nor a meal ordered
    written = repr(line)
    for secret in (token["Authorization"].split()[1], "key-secret-1", api.world.soup):
        assert secret not in written


def test_a_callers_correlation_id_is_echoed_logged_and_stored_with_the_order(api: Api) -> None:
    """The ids reach the events the request records: the fridge's reservation that is the
    order's birth carries them, as `farmacy trace` and the workers read them."""
    headers = {
        **api.as_(Role.CUSTOMER, "ana"),
        "Idempotency-Key": "k-corr",
        "X-Request-Id": "req-43",
        "X-Correlation-Id": "checkout-7",
    }
    body = {"fridge_id": api.world.fridge_id, "lines": [{"meal_id": api.world.soup, "quantity": 1}]}
    answer, lines = logged(lambda: api.client.post("/orders", json=body, headers=headers))
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Correlation-Id"] == "checkout-7"
    assert one_request_line(lines)["correlation_id"] == "checkout-7"
    order_id = answer.json()["order_id"]
    events = api.side.store.events.get(Fridge.create_id(api.world.fridge_id))
    [reserved] = [e for e in events if getattr(e, "order_id", None) == order_id]
    assert cause_of(reserved) == Cause("req-43", "checkout-7", "req-43", "api")


def test_a_correlation_id_that_is_not_plain_is_replaced_by_the_request_id(api: Api) -> None:
    headers = {
        **api.as_(Role.CUSTOMER, "ana"),
        "Idempotency-Key": "k-forged",
        "X-Request-Id": "req-44",
        "X-Correlation-Id": "x" * 65,
    }
    body = {"fridge_id": api.world.fridge_id, "lines": [{"meal_id": api.world.soup, "quantity": 1}]}
    answer = api.client.post("/orders", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Correlation-Id"] == "req-44"


def test_ids_in_the_path_are_logged_under_the_route_template(api: Api) -> None:
    order_id = api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"]
    answer, lines = logged(
        lambda: api.client.get(f"/orders/{order_id}", headers=api.as_(Role.OPERATOR))
    )
    line = one_request_line(lines)
    assert line["route"] == "/orders/{order_id}" and line["order_id"] == order_id
    assert line["method"] == "GET" and line["status"] == answer.status_code
    assert set(line) == LINE_FIELDS | {"order_id"}


def test_a_refusal_is_logged_with_its_status_and_echoes_the_request_id(api: Api) -> None:
    answer, lines = logged(lambda: api.order("ana", "k1", {api.world.soup: 100}))
    assert answer.status_code == 409
    line = one_request_line(lines)
    assert line["status"] == 409 and line["route"] == "/orders"
    assert answer.headers["X-Request-Id"] == line["request_id"]


def test_without_x_request_id_each_request_gets_a_new_one_echoed(api: Api) -> None:
    first, first_lines = logged(lambda: api.client.get("/healthz"))
    second, second_lines = logged(lambda: api.client.get("/healthz"))
    ids = [
        one_request_line(first_lines)["request_id"],
        one_request_line(second_lines)["request_id"],
    ]
    assert ids == [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert ids[0] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert first.headers.get_list("X-Request-Id") == [ids[0]]  # once, not twice


def test_a_long_request_id_is_cut_to_64_characters(api: Api) -> None:
    answer, lines = logged(lambda: api.client.get("/healthz", headers={"X-Request-Id": "r" * 100}))
    assert one_request_line(lines)["request_id"] == "r" * 64 == answer.headers["X-Request-Id"]


def test_operations_routes_are_logged_too(api: Api) -> None:
    _, lines = logged(lambda: api.client.get("/metrics"))
    line = one_request_line(lines)
    assert (line["route"], line["status"]) == ("/metrics", 200)


def scrape(api: Api) -> dict[tuple[str, tuple[str, ...]], float]:
    """Every sample of the request metrics on /metrics, by name and label values."""
    text = api.client.get("/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("farmacy_request"):
            continue
        for sample in family.samples:
            labels = tuple(sample.labels.get(name, "") for name in (*LABELS, "le"))
            found[sample.name, labels] = sample.value
    return found


def labels(method: str, path: str, status: int, le: str = "") -> tuple[str, ...]:
    return ("farmacy", method, path, str(status), le)


def test_metrics_count_and_time_each_request_by_route_template_and_status(api: Api) -> None:
    order_id = api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"]
    route = "/orders/{order_id}"
    before = scrape(api)
    answer = api.client.get(f"/orders/{order_id}", headers=api.as_(Role.OPERATOR))
    api.client.get(f"/orders/{order_id}", headers=api.as_(Role.OPERATOR))
    after = scrape(api)

    def grew(name: str, le: str = "") -> float:
        key = (name, labels("GET", route, answer.status_code, le))
        return after[key] - before.get(key, 0.0)

    assert grew("farmacy_requests_total") == 2
    assert grew("farmacy_request_duration_seconds_count") == 2
    assert grew("farmacy_request_duration_seconds_sum") > 0
    assert grew("farmacy_request_duration_seconds_bucket", "+Inf") == 2
    buckets = sorted(
        float(key[1][-1])
        for key in after
        if key[0] == "farmacy_request_duration_seconds_bucket"
        and key[1][:-1] == labels("GET", route, answer.status_code)[:-1]
        and key[1][-1] != "+Inf"
    )
    assert buckets == BUCKETS
    # no series for the path as requested: routes are grouped by their template
    assert not [key for key in after if order_id in key[1][2]]


def test_metrics_say_what_is_in_progress_and_which_answers_were_5xx(api: Api) -> None:
    api.client.get("/healthz")
    api.side.store.close()
    assert api.client.get("/readyz").status_code == 503
    now = scrape(api)
    # in progress is labelled with status 200 whatever the answer: it has none yet
    assert now["farmacy_requests_in_progress", labels("GET", "/healthz", 200)] == 0
    assert now["farmacy_requests_in_progress", labels("GET", "/metrics", 200)] == 1  # this one
    assert now["farmacy_requests_error_total", labels("GET", "/readyz", 503)] >= 1
    assert ("farmacy_requests_error_total", labels("GET", "/healthz", 200)) not in now


def test_metrics_and_health_are_counted_and_unknown_paths_are_not(api: Api) -> None:
    api.client.get("/healthz")
    api.client.get("/metrics")
    assert api.client.get("/no-such-route").status_code == 404
    now = scrape(api)
    assert now["farmacy_requests_total", labels("GET", "/healthz", 200)] >= 1
    assert now["farmacy_requests_total", labels("GET", "/metrics", 200)] >= 1
    assert not [key for key in now if "no-such-route" in key[1][2]]


def test_a_request_id_that_is_not_utf8_is_logged_and_echoed_readably(api: Api) -> None:
    # As a server hands the app raw header bytes (the test client would re-encode them).
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-request-id", b"req-\xff\xfe")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    with capture_logs() as lines:
        anyio.run(api.client.app, scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    assert start["status"] == 200
    line = one_request_line(lines)
    assert line["request_id"] == "req-\ufffd\ufffd"
    assert (b"x-request-id", "req-\ufffd\ufffd".encode()) in start["headers"]
