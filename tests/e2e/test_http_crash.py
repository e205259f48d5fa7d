"""An API process killed with SIGKILL in the middle of a burst of orders, on each store.

Every request that got no answer is sent again, with its key and body, to a new API process.
Also through the load balancer, in front of two processes, orders addressed to their fridge:
one process is killed, the balancer's 502 (the process never answered) counts as no answer,
and the retries go through the balancer again.
Then, on every fridge, the units held are exactly the units of the orders it gave birth to,
every order was reserved once, and every order a client heard of is one of them.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from domain.fridge import Fridge
from interfaces.http.auth import Role, issue_token
from ops.balancer import Balancer
from ops.root import build_write_side
from ops.settings import Settings
from tests.conftest import settings_for, unique
from tests.e2e.test_http_processes import free_port, start_api, wait_listening
from tests.integration.world import World, make_world

CLIENTS, ORDERS_EACH = 16, 12
BAD_GATEWAY = 502


def requests_for(worlds: list[World]) -> list[tuple[str, str, dict[str, Any]]]:
    """(customer, key, body): each client orders from the fridges in turn, 1 or 2 soups."""
    found = []
    for client in range(CLIENTS):
        for n in range(ORDERS_EACH):
            world = worlds[(client + n) % len(worlds)]
            lines = [{"meal_id": world.soup, "quantity": 1 + (client + n) % 2}]
            body = {"fridge_id": world.fridge_id, "lines": lines}
            found.append((f"customer-{client}", f"k-{n}", body))
    return found


def to_fridge(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"/fridges/{body['fridge_id']}/orders", {"lines": body["lines"]}


def in_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "/orders", body


async def send_all(
    url: str,
    secret: str,
    requests: list[tuple[str, str, dict[str, Any]]],
    answered_enough: tuple[int, asyncio.Event] | None = None,
    route: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]] = in_body,
) -> tuple[dict[tuple[str, str], httpx.Response], list[tuple[str, str, dict[str, Any]]]]:
    """Send the requests from CLIENTS concurrent clients; with `answered_enough` = (n, event),
    set the event once n answers have come. Returns the answers and the requests that got
    none."""
    answered: dict[tuple[str, str], httpx.Response] = {}
    unanswered: list[tuple[str, str, dict[str, Any]]] = []
    by_client: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for request in requests:
        by_client.setdefault(request[0], []).append(request)

    async def client(mine: list[tuple[str, str, dict[str, Any]]]) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=15.0) as http:
            for customer, key, body in mine:
                token = issue_token(secret, Role.CUSTOMER, customer)
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
                path, sent = route(body)
                try:
                    answer = await http.post(path, json=sent, headers=headers)
                except httpx.TransportError:
                    unanswered.append((customer, key, body))
                    continue
                if answer.status_code == BAD_GATEWAY:  # the balancer: the process never answered
                    unanswered.append((customer, key, body))
                    continue
                answered[customer, key] = answer
                if answered_enough and len(answered) >= answered_enough[0]:
                    answered_enough[1].set()

    await asyncio.gather(*(client(mine) for mine in by_client.values()))
    return answered, unanswered


@pytest.mark.slow
@pytest.mark.parametrize("balanced", [False, True], ids=["direct", "balanced"])
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_an_api_killed_mid_burst_then_retried_holds_each_order_once(
    store: str, balanced: bool, request: pytest.FixtureRequest, tmp_path: object
) -> None:
    settings: Settings = settings_for(store, request, tmp_path)
    side = build_write_side(settings)
    worlds = [make_world(side, soup_units=60, salad_units=0)]
    worlds += [
        World(worlds[0].city_id, worlds[0].venue_id, unique("fridge"), worlds[0].soup, "")
        for _ in range(2)
    ]
    for world in worlds[1:]:
        side.catalogue.install_fridge(world.fridge_id, world.venue_id)
        best_before = (side.clock() + timedelta(days=2)).date()
        side.stock.deliver(world.fridge_id, unique("delivery"), {world.soup: 60}, best_before)
    requests = requests_for(worlds)

    if balanced:
        first, retried, still = burst_through_balancer(settings, requests)
    else:
        first, retried, still = burst_at_one_process(settings, requests)
    assert first and still == []

    answers = {**first, **retried}
    statuses = Counter(answer.status_code for answer in answers.values())
    assert set(statuses) <= {200, 201, 409}, statuses
    told = {answer.json()["order_id"] for answer in answers.values() if answer.status_code < 300}
    held_orders: set[str] = set()
    for world in worlds:
        side.writer.forget(world.fridge_id)
        fridge = side.catalogue.fridge(world.fridge_id)
        reserved = Counter(
            event.order_id  # type: ignore[attr-defined]
            for event in side.store.events.get(Fridge.create_id(world.fridge_id))
            if type(event).__name__ == "MealsReserved"
        )
        assert set(reserved.values()) <= {1}, "an order was reserved twice"
        promised = [fridge.promised(order_id) for order_id in fridge.open_orders()]
        assert all(p is not None for p in promised)
        units = sum(line["quantity"] for p in promised if p for line in p.terms["lines"])
        assert fridge.held(world.soup) == units
        held_orders |= set(fridge.open_orders())
    assert told <= held_orders
    side.close()


Sent = list[tuple[str, str, dict[str, Any]]]
Answers = dict[tuple[str, str], httpx.Response]


def burst_and_kill(url: str, secret: str, requests: Sent, victim: Any, route: Any) -> Any:
    """Send the burst; a third of the way through, SIGKILL `victim`."""

    async def run() -> tuple[Answers, Sent]:
        third = asyncio.Event()
        burst = asyncio.create_task(
            send_all(url, secret, requests, (len(requests) // 3, third), route)
        )
        await third.wait()
        victim.send_signal(signal.SIGKILL)
        return await burst

    return asyncio.run(run())


def burst_at_one_process(settings: Settings, requests: Sent) -> tuple[Answers, Answers, Sent]:
    """One process killed mid-burst; what got no answer goes to a new process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(settings, port)
    try:
        wait_listening(url, api)
        first, unanswered = burst_and_kill(url, settings.secret, requests, api, in_body)
        api.wait(timeout=30)
    finally:
        api.kill()
    assert unanswered, "the kill landed outside the burst"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    again = start_api(settings, port)
    try:
        wait_listening(url, again)
        retried, still = asyncio.run(send_all(url, settings.secret, unanswered))
    finally:
        again.terminate()
        again.wait(timeout=30)
    return first, retried, still


def owner_of(balancer: str, fridge_id: str, secret: str) -> int:
    """The pid of the process the balancer sends this fridge's orders to: asked with an
    order of no lines, which that process refuses (422) without writing anything."""
    token = issue_token(secret, Role.CUSTOMER, "probe")
    answer = httpx.post(
        f"{balancer}/fridges/{fridge_id}/orders",
        json={"lines": []},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "probe"},
        timeout=15.0,
    )
    assert answer.status_code == 422, answer.text
    return int(answer.headers["X-Farmacy-Process"])


def burst_through_balancer(settings: Settings, requests: Sent) -> tuple[Answers, Answers, Sent]:
    """Two processes behind the balancer, orders by fridge; the one that owns the first
    fridge is killed mid-burst and started again on its port (as the supervisor does); what
    got no answer is sent again."""
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    apis = [start_api(settings, port) for port in ports]
    try:
        for url, api in zip(urls, apis, strict=True):
            wait_listening(url, api)
        with Balancer(urls, free_port()) as balancer:
            secret = settings.secret
            owner = owner_of(balancer.url, requests[0][2]["fridge_id"], secret)
            n = [api.pid for api in apis].index(owner)
            first, unanswered = burst_and_kill(balancer.url, secret, requests, apis[n], to_fridge)
            apis[n].wait(timeout=30)
            # none may be left unanswered: the balancer sends a request that never reached
            # the killed process to the other, and the kill may find none half-answered
            apis[n] = start_api(settings, ports[n])
            wait_listening(urls[n], apis[n])
            retried, still = asyncio.run(
                send_all(balancer.url, secret, unanswered, route=to_fridge)
            )
    finally:
        for api in apis:
            api.terminate()
        for api in apis:
            api.wait(timeout=30)
    return first, retried, still
