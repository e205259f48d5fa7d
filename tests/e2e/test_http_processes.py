"""Two API processes and a worker process on PostgreSQL: 64 clients order from one fridge of
300 units; exactly 300 orders are placed, everyone else hears 409, and the menu shows 0.

Run twice: the clients split between the two processes (`POST /orders`, the fridge in the
body), and through the load balancer (ops/deploy/Caddyfile, `POST /fridges/{id}/orders`),
which sends every order for the fridge to one process: that one sells all 300 and neither
loses an append to the other."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role, issue_token
from ops.balancer import Balancer
from ops.root import build_write_side
from ops.settings import Settings
from tests.integration.projection_processes import start_worker, worker_env
from tests.integration.world import World, make_world

ROOT = Path(__file__).resolve().parents[2]
UNITS, CLIENTS = 300, 64
DEADLINE = 45.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_api(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    """One API process, as `farmacy api` runs it: uvicorn with uvloop and httptools."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "interfaces.http.app:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**worker_env(settings), "FARMACY_LOG_FORMAT": "json"},
        # never a pipe nobody reads: a line logged per request fills it and blocks the server
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_listening(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"API exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def postgres_settings(postgres_schema: tuple[str, str]) -> Settings:
    dsn, schema = postgres_schema
    return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema)


@dataclass
class Cluster:
    apis: list[str]
    """Each API process's own URL."""
    urls: list[str]
    """Where clients send requests: the processes themselves, or the balancer."""
    world: World
    balanced: bool

    def order(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The path and body of an order: by fridge behind the balancer."""
        if self.balanced:
            return f"/fridges/{body['fridge_id']}/orders", {"lines": body["lines"]}
        return "/orders", body


@pytest.fixture(params=["split", "balanced"])
def cluster(postgres_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    side = build_write_side(postgres_settings)
    world = make_world(side, soup_units=UNITS, salad_units=0)
    side.close()
    processes = [start_worker(postgres_settings, "venue_menu", batch_size=200)]
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(start_api(postgres_settings, port))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes[1:], strict=True):
            wait_listening(url, process)
        if request.param == "split":
            yield Cluster(urls, urls, world, balanced=False)
        else:
            with Balancer(urls, free_port()) as balancer:
                yield Cluster(urls, [balancer.url], world, balanced=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def order_until_sold_out(
    cluster: Cluster, secret: str
) -> tuple[Counter[int], int, Counter[str]]:
    """Every client orders one soup at a time until it hears 409; statuses, max position,
    and how many orders each process (by pid) placed."""
    statuses: Counter[int] = Counter()
    placed_by: Counter[str] = Counter()
    positions = [0]
    deadline = time.monotonic() + DEADLINE
    urls, world = cluster.urls, cluster.world
    path, body = cluster.order(
        {"fridge_id": world.fridge_id, "lines": [{"meal_id": world.soup, "quantity": 1}]}
    )

    async def client(number: int) -> None:
        url = urls[number % len(urls)]
        token = issue_token(secret, Role.CUSTOMER, f"customer-{number}")
        async with httpx.AsyncClient(base_url=url, timeout=20.0) as http:
            for attempt in range(UNITS + 50):
                assert time.monotonic() < deadline, "clients did not finish in time"
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{attempt}"}
                answer = await http.post(path, json=body, headers=headers)
                statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    positions.append(answer.json()["position"])
                    placed_by[answer.headers["X-Farmacy-Process"]] += 1
                elif answer.status_code == 409:
                    assert answer.json()["available"] == {world.soup: 0}
                    return
                elif answer.status_code == 503:  # too busy: back off a little, bounded
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"unexpected {answer.status_code}: {answer.text}")
            raise AssertionError(f"client {number} never heard 409")

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return statuses, max(positions), placed_by


def conflicts(api: str) -> float:
    """The process's lost appends so far (farmacy_fridge_write_conflicts)."""
    for line in httpx.get(f"{api}/metrics", timeout=10.0).text.splitlines():
        if line.startswith("farmacy_fridge_write_conflicts"):
            return float(line.split()[-1])
    raise AssertionError("no farmacy_fridge_write_conflicts in /metrics")


@pytest.mark.slow
def test_two_api_processes_sell_a_fridge_exactly_once(
    cluster: Cluster, postgres_settings: Settings
) -> None:
    world = cluster.world
    statuses, last, placed_by = asyncio.run(order_until_sold_out(cluster, postgres_settings.secret))
    assert statuses[201] == UNITS, statuses
    assert statuses[409] == CLIENTS, statuses  # every client stopped on its first refusal
    if cluster.balanced:  # one process sold the fridge, and lost no append to the other
        assert list(placed_by.values()) == [UNITS], placed_by
        assert [conflicts(api) for api in cluster.apis] == [0.0, 0.0]
    else:
        assert len(placed_by) == 2, placed_by

    token = issue_token(postgres_settings.secret, Role.CUSTOMER, "customer-0")
    for url in cluster.apis:  # both processes read the same model, once it reflects all
        menu = httpx.get(
            f"{url}/venues/{world.venue_id}/menu",
            params={"min_position": last},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
        assert menu.status_code == 200, menu.text
        assert menu.json()["position"] >= last
        assert {i["meal_id"]: i["available"] for i in menu.json()["items"]} == {world.soup: 0}
