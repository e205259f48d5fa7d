"""Two API processes and a worker process on PostgreSQL: 64 clients order from one fridge of
300 units; exactly 300 orders are placed, everyone else hears 409, and the menu shows 0."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interfaces.http.auth import Role, issue_token
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


@pytest.fixture
def cluster(postgres_settings: Settings) -> Iterator[tuple[list[str], World]]:
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
        yield urls, world
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def order_until_sold_out(
    urls: list[str], world: World, secret: str
) -> tuple[Counter[int], int]:
    """Every client orders one soup at a time until it hears 409; statuses, max position."""
    statuses: Counter[int] = Counter()
    positions = [0]
    deadline = time.monotonic() + DEADLINE
    body = {"fridge_id": world.fridge_id, "lines": [{"meal_id": world.soup, "quantity": 1}]}

    async def client(number: int) -> None:
        url = urls[number % len(urls)]
        token = issue_token(secret, Role.CUSTOMER, f"customer-{number}")
        async with httpx.AsyncClient(base_url=url, timeout=20.0) as http:
            for attempt in range(UNITS + 50):
                assert time.monotonic() < deadline, "clients did not finish in time"
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{attempt}"}
                answer = await http.post("/orders", json=body, headers=headers)
                statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    positions.append(answer.json()["position"])
                elif answer.status_code == 409:
                    assert answer.json()["available"] == {world.soup: 0}
                    return
                elif answer.status_code == 503:  # too busy: back off a little, bounded
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"unexpected {answer.status_code}: {answer.text}")
            raise AssertionError(f"client {number} never heard 409")

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return statuses, max(positions)


@pytest.mark.slow
def test_two_api_processes_sell_a_fridge_exactly_once(
    cluster: tuple[list[str], World], postgres_settings: Settings
) -> None:
    urls, world = cluster
    statuses, last = asyncio.run(order_until_sold_out(urls, world, postgres_settings.secret))
    assert statuses[201] == UNITS, statuses
    assert statuses[409] == CLIENTS, statuses  # every client stopped on its first refusal

    token = issue_token(postgres_settings.secret, Role.CUSTOMER, "customer-0")
    for url in urls:  # both processes read the same model, once it reflects every order
        menu = httpx.get(
            f"{url}/venues/{world.venue_id}/menu",
            params={"min_position": last},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
        )
        assert menu.status_code == 200, menu.text
        assert menu.json()["position"] >= last
        assert {i["meal_id"]: i["available"] for i in menu.json()["items"]} == {world.soup: 0}
