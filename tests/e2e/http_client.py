"""An API over a fresh store of each kind, as a client meets it: Litestar's TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from interfaces.http.app import create_app
from interfaces.http.auth import Role, issue_token
from interfaces.http.payments import signed_headers
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.world import World, make_world


@dataclass
class Api:
    client: TestClient[Any]
    side: WriteSide
    world: World
    secret: str
    webhook_secret: str

    def headers(self, role: Role | None, subject: str | None = None) -> dict[str, str]:
        if role is None:
            return {}
        token = issue_token(self.secret, role, subject or f"{role}-1")
        return {"Authorization": f"Bearer {token}"}

    def as_(self, role: Role | None, subject: str | None = None) -> dict[str, str]:
        return self.headers(role, subject)

    def order(
        self, customer: str, key: str, lines: dict[str, int], fridge_id: str | None = None
    ) -> httpx.Response:
        body = {
            "fridge_id": fridge_id or self.world.fridge_id,
            "lines": [{"meal_id": m, "quantity": q} for m, q in lines.items()],
        }
        headers = {**self.headers(Role.CUSTOMER, customer), "Idempotency-Key": key}
        return self.client.post("/orders", json=body, headers=headers)

    def opened(self, order_id: str) -> str:
        """Given the fulfilment flow has opened the order (it asks for payment only then)."""
        self.side.ordering.ensure_order(order_id, self.world.fridge_id)
        return order_id

    def signature(self, raw: bytes) -> dict[str, str]:
        return signed_headers(self.webhook_secret, raw)

    def webhook(
        self,
        body: dict[str, Any],
        secret: str | None = None,
        message_id: str | None = None,
        at: datetime | None = None,
    ) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = signed_headers(secret or self.webhook_secret, raw, message_id, at)
        return self.client.post(
            "/payments/webhook",
            content=raw,
            headers={**headers, "Content-Type": "application/json"},
        )


@pytest.fixture
def api(store_settings: Settings) -> Iterator[Api]:
    side = build_write_side(store_settings, clock=FakeClock())
    world = make_world(side)
    with TestClient(create_app(side, store_settings), raise_server_exceptions=False) as client:
        yield Api(client, side, world, store_settings.secret, store_settings.payment_webhook_secret)


def is_problem(response: httpx.Response) -> bool:
    return response.headers["content-type"].startswith("application/problem+json")
