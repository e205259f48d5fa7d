"""The feed over HTTP, as another subsystem reads it: pages from position 0, then the live
stream of server-sent events, while orders keep arriving; on each store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_sse import connect_sse

from interfaces.http.app import create_app
from interfaces.http.auth import Role, issue_token
from ops.root import WriteSide, build_write_side
from ops.settings import Settings
from tests.conftest import FakeClock
from tests.integration.feed_rig import Workload, feed_worker, wait_for
from tests.integration.nats_servers import free_port
from tests.integration.world import World, make_world


@dataclass
class Served:
    base: str
    side: WriteSide
    world: World
    settings: Settings

    def token(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings.secret, role, 'reader')}"}


@pytest.fixture
def served(store_settings: Settings) -> Iterator[Served]:
    """A real server (uvicorn on a free loopback port) and the feed's worker."""
    side = build_write_side(store_settings, clock=FakeClock())
    world = make_world(side, soup_units=200, salad_units=200)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(side, store_settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for("the API serves", lambda: server.started, timeout=30, every=0.02)
        with feed_worker(store_settings, side):
            served = Served(f"http://127.0.0.1:{port}", side, world, store_settings)
            wait_for("the feed is built", lambda: built(served), timeout=30, every=0.05)
            yield served
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def built(served: Served) -> bool:
    """The feed answers (503 with Retry-After until its worker has built it)."""
    answer = httpx.get(f"{served.base}/feed", headers=served.token(Role.SUBSYSTEM))
    return answer.status_code == 200


def whole_feed(served: Served, client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(
            f"{served.base}/feed",
            params={"after": after, "limit": 1000},
            headers=served.token(Role.SUBSYSTEM),
        ).json()
        found += page["events"]
        if len(page["events"]) < 1000:
            return found
        after = page["next_after"]


def test_paging_then_following_live_sees_every_event_once_in_order(served: Served) -> None:
    workload = Workload(served.side, served.world, orders=24, pause=0.02)
    seen: list[dict[str, Any]] = []
    headers = served.token(Role.SUBSYSTEM)
    with httpx.Client(timeout=10) as client, workload.running():
        after = 0
        while True:  # pages of 5 from position 0, until a page comes back short
            response = client.get(
                f"{served.base}/feed", params={"after": after, "limit": 5}, headers=headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            seen += page["events"]
            after = page["next_after"]
            if len(page["events"]) < 5:
                break
        paged = len(seen)
        with connect_sse(
            client,
            "GET",
            f"{served.base}/feed/live",
            headers={**headers, "Last-Event-ID": str(after)},
        ) as live:
            for message in live.iter_sse():
                event = message.json()
                assert message.id == str(event["position"]) and message.event == event["type"]
                seen.append(event)
                if workload_done(workload, seen):
                    break
    with httpx.Client(timeout=10) as client:
        truth = whole_feed(served, client)
    assert [e["id"] for e in seen] == [e["id"] for e in truth]
    positions = [e["position"] for e in seen]
    assert positions == sorted(set(positions))
    assert paged > 0 and len(seen) > paged, "the test read both pages and the live stream"


def workload_done(workload: Workload, seen: list[dict[str, Any]]) -> bool:
    """The workload's last event is in: it expires its due orders last of all."""
    expiries = workload.orders // 4 + (1 if workload.orders % 4 > 1 else 0)
    return sum(e["type"] == "order.expired" for e in seen) == expiries


def test_the_feed_is_for_subsystems_and_operators_only(served: Served) -> None:
    url = f"{served.base}/feed"
    with httpx.Client(timeout=10) as client:
        assert client.get(url).status_code == 401
        assert client.get(url, headers=served.token(Role.CUSTOMER)).status_code == 403
        assert client.get(url, headers=served.token(Role.OPERATOR)).status_code == 200
        answer = client.get(url, headers=served.token(Role.SUBSYSTEM))
        assert answer.status_code == 200
        types = [e["type"] for e in answer.json()["events"]]
        assert types[:3] == ["fridge.installed", "delivery.received", "delivery.received"]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"after": -1}, {}),
        ({"limit": 0}, {}),
        ({"limit": 1001}, {}),
        ({"after": "one"}, {}),
    ],
)
def test_a_bad_page_request_is_a_problem_with_a_reason(
    served: Served, params: dict[str, Any], headers: dict[str, str]
) -> None:
    with httpx.Client(timeout=10) as client:
        answer = client.get(
            f"{served.base}/feed", params=params, headers={**served.token(Role.SUBSYSTEM)}
        )
    assert answer.status_code in (400, 422)
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_bad_last_event_id_is_refused(served: Served) -> None:
    with httpx.Client(timeout=10) as client:
        answer = client.get(
            f"{served.base}/feed/live",
            headers={**served.token(Role.SUBSYSTEM), "Last-Event-ID": "yesterday"},
        )
    assert answer.status_code == 422
    assert "Last-Event-ID" in answer.text
