"""The payment webhook as Standard Webhooks specifies it: each bad webhook gets its documented
answer, changes nothing, and is logged without its body; a good one is taken in once, in any
order, even for an order the flow has not opened yet."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient
from standardwebhooks.webhooks import WebhookVerificationError
from structlog.testing import capture_logs

from interfaces.http.app import create_app
from interfaces.http.auth import Role
from interfaces.http.payments import signed_headers, verify
from ops.root import build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.e2e.http_client import Api, is_problem
from tests.e2e.http_client import api as api  # the fixture
from tests.integration.world import make_world

CARD_SECRET_BODY = "p-secret-ref-4242"  # what must never reach a log line


def authorised(order_id: str, fridge_id: str = "") -> dict[str, str]:
    body = {"order_id": order_id, "outcome": "authorised", "payment_ref": CARD_SECRET_BODY}
    return body | ({"fridge_id": fridge_id} if fridge_id else {})


def status(api: Api, order_id: str) -> str:
    return str(api.side.ordering.order(order_id).status)


def versions(api: Api, order_id: str) -> int:
    return api.side.ordering.order(order_id).version


def test_bad_webhooks_are_refused_change_nothing_and_log_no_body(api: Api) -> None:
    order_id = api.opened(api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"])
    version = versions(api, order_id)
    body = authorised(order_id)
    raw = json.dumps(body).encode()
    stale = datetime.now(UTC) - timedelta(minutes=6)
    other_secret = "whsec_" + "b3RoZXItc2VjcmV0LW9mLWF0LWxlYXN0LTI0LWJ5dGVz"
    with capture_logs() as lines:
        forged = api.webhook(body, secret=other_secret)
        late = api.webhook(body, at=stale)
        unsigned = api.client.post("/payments/webhook", content=raw)
        tampered = api.client.post(
            "/payments/webhook",
            content=raw.replace(b"authorised", b"declined"),
            headers={**signed_headers(api.webhook_secret, raw), "content-type": "application/json"},
        )
    for refused in (forged, late, unsigned, tampered):
        assert refused.status_code == 401 and is_problem(refused), refused.text
    assert "timestamp" in late.json()["detail"].lower()
    assert versions(api, order_id) == version and status(api, order_id) == "placed"
    refusals = [line for line in lines if line["event"] == "payment_webhook_refused"]
    assert len(refusals) == 4
    assert CARD_SECRET_BODY not in repr(lines)


def test_a_malformed_body_and_an_unknown_order_are_answered_and_change_nothing(
    api: Api,
) -> None:
    malformed = api.webhook({"order_id": "nope", "outcome": "paid", "payment_ref": ""})
    assert malformed.status_code == 422 and is_problem(malformed), malformed.text
    raw = b"{not json"
    not_json = api.client.post(
        "/payments/webhook",
        content=raw,
        headers={**signed_headers(api.webhook_secret, raw), "content-type": "application/json"},
    )
    assert not_json.status_code == 400 and is_problem(not_json), not_json.text
    unknown_id = "00000000-0000-5000-8000-000000000000"
    unknown = api.webhook(authorised(unknown_id))
    assert unknown.status_code == 404 and is_problem(unknown)
    unknown_fridge = api.webhook(authorised(unknown_id, "no-such-fridge"))
    assert unknown_fridge.status_code == 404 and is_problem(unknown_fridge)
    not_an_order_id = api.webhook(authorised("0" * 36))  # the schema's length, no UUID
    assert not_an_order_id.status_code == 404 and is_problem(not_an_order_id)


def test_a_replayed_webhook_id_is_2xx_and_changes_nothing_even_after_the_order_moved(
    api: Api,
) -> None:
    order_id = api.opened(api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"])
    first = api.webhook(authorised(order_id), message_id="msg_1")
    assert first.status_code == 200 and first.json()["status"] == "ready_for_pickup"
    version = versions(api, order_id)
    declined = {"order_id": order_id, "outcome": "declined", "payment_ref": "p-2"}
    again = api.webhook(authorised(order_id), message_id="msg_1")
    stale_decline = api.webhook(declined, message_id="msg_2")  # any order: changes nothing
    assert again.status_code == 200 and again.json()["status"] == "ready_for_pickup"
    assert stale_decline.status_code == 200 and stale_decline.json()["status"] == "ready_for_pickup"
    assert versions(api, order_id) == version


def test_a_webhook_for_an_order_not_yet_opened_opens_it_first(api: Api) -> None:
    order_id = api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"]
    taken = api.webhook(authorised(order_id, api.world.fridge_id))
    assert taken.status_code == 200 and taken.json()["status"] == "ready_for_pickup"
    assert api.side.ordering.order(order_id).payment_ref == CARD_SECRET_BODY


def test_an_authorisation_after_the_order_ended_is_taken_for_voiding_never_409(api: Api) -> None:
    order_id = api.opened(api.order("ana", "k1", {api.world.soup: 1}).json()["order_id"])
    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=api.as_(Role.CUSTOMER, "ana"))
    assert cancelled.json()["status"] == "cancelled"
    late = api.webhook(authorised(order_id))
    assert late.status_code == 200 and late.json()["status"] == "cancelled"
    order = api.side.ordering.order(order_id)
    assert order.money_to_void()  # the flow voids it (tests/integration/test_fulfilment.py)


def test_the_timestamp_tolerance_is_the_operators_and_a_stale_webhook_past_it_is_refused(
    store_settings: Settings,
) -> None:
    settings = replace(store_settings, payment_webhook_tolerance=timedelta(seconds=90))
    side = build_write_side(settings, clock=FakeClock())
    world = make_world(side)
    with TestClient(create_app(side, settings), raise_server_exceptions=False) as client:
        api = Api(client, side, world, settings.secret, settings.payment_webhook_secret)
        order_id = api.opened(api.order("ana", "k1", {world.soup: 1}).json()["order_id"])
        now = datetime.now(UTC)
        # (the header holds whole seconds, and the request takes a moment: 2 s either side)
        stale = api.webhook(authorised(order_id), at=now - timedelta(seconds=92))
        assert stale.status_code == 401 and "too old" in stale.json()["detail"], stale.text
        early = api.webhook(authorised(order_id), at=now + timedelta(seconds=92))
        assert early.status_code == 401 and "too new" in early.json()["detail"], early.text
        assert status(api, order_id) == "placed"
        within = api.webhook(authorised(order_id), at=now - timedelta(seconds=88))
        assert within.status_code == 200, within.text
        assert status(api, order_id) == "ready_for_pickup"
    side.close()


def test_a_timestamp_exactly_at_the_tolerance_passes_and_a_second_past_it_does_not() -> None:
    secret = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    tolerance = timedelta(seconds=30)
    body = b'{"order_id": "o-1"}'

    def check(at: datetime) -> None:
        verify(secret, body, signed_headers(secret, body, "msg_1", at), tolerance, now)

    check(now - tolerance)
    check(now + tolerance)
    with pytest.raises(WebhookVerificationError, match="too old"):
        check(now - tolerance - timedelta(seconds=1))
    with pytest.raises(WebhookVerificationError, match="too new"):
        check(now + tolerance + timedelta(seconds=1))
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify(secret, body + b" ", signed_headers(secret, body, "msg_1", now), tolerance, now)
