"""The connection budget (ops/connections.py) on PostgreSQL, as the server counts it.

- A whole stack (4 API processes, a worker process per read model, fulfilment, snapshots)
  becomes ready and, at idle and under a burst of orders and reads, holds no more
  connections than its budget: well inside PostgreSQL's default 100.
- A pool that cannot hand out a connection in time is answered 503 with `Retry-After` within
  about the pool's wait (2 s), never a 500 after half a minute.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import conninfo_to_dict

from interfaces.http.app import create_app
from interfaces.http.auth import Role, issue_token
from interfaces.http.reading import ReadSide
from ops import connections
from ops.root import build_write_side, open_databases
from ops.settings import Settings
from projections.database import POOL_TIMEOUT_SECONDS, PostgresDatabase
from projections.models import PROJECTIONS
from tests.e2e.http_client import is_problem
from tests.integration.projection_processes import worker_env
from tests.integration.world import World, make_world

ROOT = Path(__file__).resolve().parents[2]
API_PROCESSES = 4
BOUND = 70
"""What the test asserts for the whole stack: 30 of the server's 100 left for everyone else."""
PROMPT = POOL_TIMEOUT_SECONDS + 3.0
"""A generous bound on "at once": the pool's wait, plus a loaded 2-core machine's slack."""


@pytest.fixture
def postgres_settings(postgres_schema: tuple[str, str]) -> Settings:
    dsn, schema = postgres_schema
    return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema)


# ---- a tiny pool, held by the test ------------------------------------------------------------


@pytest.fixture
def starved(postgres_settings: Settings) -> Iterator[tuple[TestClient[Any], World, Any, Any]]:
    """An API whose event store and read models have one connection each: (client, world,
    the store's pool, the read models' pool)."""
    one = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    side = build_write_side(postgres_settings, extra_env=one)
    world = make_world(side)
    read = ReadSide(open_databases(postgres_settings, PROJECTIONS, pool_size=1))
    reads = cast(PostgresDatabase, read.dbs["fridge_stock"]).pool
    store_pool = cast(Any, side.store.recorder).datastore.pool
    with TestClient(create_app(side, postgres_settings, read), raise_server_exceptions=False) as c:
        yield c, world, store_pool, reads


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def assert_prompt_503(answer: httpx.Response, took: float) -> None:
    assert answer.status_code == 503, answer.text
    assert is_problem(answer)
    assert answer.json()["title"] == "store unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    assert took < PROMPT, f"answered after {took:.1f} s"


def test_a_read_with_no_free_connection_is_a_prompt_503(
    starved: tuple[TestClient[Any], World, Any, Any], postgres_settings: Settings
) -> None:
    client, world, _, reads = starved
    token = issue_token(postgres_settings.secret, Role.OPERATOR, "operator-1")
    headers = {"Authorization": f"Bearer {token}"}
    with reads.connection():  # the read models' only connection
        answer, took = timed(
            lambda: client.get(f"/fridges/{world.fridge_id}/stock", headers=headers)
        )
    assert_prompt_503(answer, took)


def test_an_order_with_no_free_connection_is_a_prompt_503_and_its_retry_succeeds(
    starved: tuple[TestClient[Any], World, Any, Any], postgres_settings: Settings
) -> None:
    client, world, store_pool, _ = starved
    token = issue_token(postgres_settings.secret, Role.CUSTOMER, "ana")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"}
    body = {"fridge_id": world.fridge_id, "lines": [{"meal_id": world.soup, "quantity": 1}]}
    with store_pool.connection():  # the event store's only connection
        answer, took = timed(lambda: client.post("/orders", json=body, headers=headers))
    assert_prompt_503(answer, took)
    again = client.post("/orders", json=body, headers=headers)  # the retry Retry-After invites
    assert again.status_code == 201, again.text


# ---- a whole stack, counted in pg_stat_activity ----------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """Every process of a deployment, each naming its connections (`PGAPPNAME`)."""

    def __init__(self, settings: Settings, tag: str) -> None:
        self.settings = settings
        self.tag = tag
        self.processes: list[subprocess.Popen[bytes]] = []
        self.budgets: dict[str, int] = {}
        self.urls: list[str] = []

    def start(self, name: str, budget: int, *args: str) -> subprocess.Popen[bytes]:
        env = {
            **worker_env(self.settings),
            "PGAPPNAME": f"{self.tag}:{name}",
            "FARMACY_LOG_FORMAT": "json",
        }
        with tempfile.TemporaryFile() as log:  # never a pipe nobody reads
            process = subprocess.Popen(
                [sys.executable, "-m", "interfaces.cli", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.processes.append(process)
        self.budgets[f"{self.tag}:{name}"] = budget
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def stack(postgres_settings: Settings) -> Iterator[tuple[Stack, World]]:
    side = build_write_side(postgres_settings)
    world = make_world(side, soup_units=10_000, salad_units=10_000)
    side.close()
    running = Stack(postgres_settings, f"budget-{uuid.uuid4().hex[:8]}")
    try:
        for name in sorted(PROJECTIONS):
            running.start(name, connections.worker(1).total, "worker", "--projection", name)
        running.start("fulfilment", connections.FULFILMENT.total, "fulfil")
        running.start("snapshots", connections.SNAPSHOTS.total, "snapshots")
        api = connections.api(postgres_settings).total
        for n in range(API_PROCESSES):
            port = free_port()
            running.start(f"api-{n}", api, "api", "--port", str(port), "--workers", "1")
            running.urls.append(f"http://127.0.0.1:{port}")
        yield running, world
    finally:
        running.stop()


def held(watch: psycopg.Connection[Any], settings: Settings, tag: str) -> Counter[str]:
    """Connections to the test's database, by the process that holds them (this stack's)."""
    dbname = conninfo_to_dict(settings.postgres_dsn or "")["dbname"]
    rows = watch.execute(
        "SELECT application_name, count(*) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name LIKE %s GROUP BY application_name",
        (dbname, f"{tag}:%"),
    ).fetchall()
    return Counter({name: int(count) for name, count in rows})


def wait_ready(urls: list[str], stack: Stack, timeout: float = 120.0) -> None:
    """Poll every API's /readyz until all answer 200: every read model's worker running."""
    deadline = time.monotonic() + timeout
    waiting = list(urls)
    while waiting:
        for process in stack.processes:
            assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            if httpx.get(f"{waiting[0]}/readyz", timeout=5.0).status_code == 200:
                waiting.pop(0)
                continue
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{waiting} not ready within {timeout} s"
        time.sleep(0.1)


async def burst(urls: list[str], world: World, secret: str, seconds: float) -> Counter[str]:
    """64 clients over every API process: orders and menu reads, for `seconds`. How many
    answers of each status (and problem title) came back."""
    statuses: Counter[str] = Counter()
    stop_at = time.monotonic() + seconds
    order = {"fridge_id": world.fridge_id, "lines": [{"meal_id": world.soup, "quantity": 1}]}

    async def client(number: int) -> None:
        token = issue_token(secret, Role.CUSTOMER, f"customer-{number}")
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=urls[number % len(urls)], timeout=30.0) as http:
            sent = 0
            while time.monotonic() < stop_at:
                sent += 1
                if number % 2:
                    key = {"Idempotency-Key": f"k{sent}"}
                    answer = await http.post("/orders", json=order, headers={**auth, **key})
                else:
                    answer = await http.get(f"/venues/{world.venue_id}/menu", headers=auth)
                title = answer.json().get("title", "") if answer.status_code >= 400 else ""
                statuses[f"{answer.status_code} {title}".strip()] += 1

    await asyncio.gather(*(client(n) for n in range(64)))
    return statuses


@pytest.mark.slow
def test_four_api_processes_and_every_worker_fit_the_connection_budget(
    stack: tuple[Stack, World], postgres_settings: Settings
) -> None:
    running, world = stack
    # the test's own connection, taken now: the server may be busy with others' tests later
    with psycopg.connect(postgres_settings.postgres_dsn or "", autocommit=True) as watch:
        wait_ready(running.urls, running)
        planned = connections.stack(postgres_settings, API_PROCESSES, len(PROJECTIONS))
        assert planned <= BOUND
        assert sum(running.budgets.values()) == planned

        most: Counter[str] = Counter()
        totals: list[int] = []
        done = threading.Event()

        def count() -> None:  # sample every 20 ms while the burst runs, and once after
            while True:
                now = held(watch, postgres_settings, running.tag)
                totals.append(sum(now.values()))
                for name, n in now.items():
                    most[name] = max(most[name], n)
                if done.wait(0.02):
                    return

        counter = threading.Thread(target=count)
        counter.start()
        try:
            statuses = asyncio.run(burst(running.urls, world, postgres_settings.secret, 3.0))
        finally:
            done.set()
            counter.join()
    assert len(totals) > 1, "the count did not run alongside the burst"
    assert statuses["201"] > 0 and statuses["200"] > 0, statuses
    # the budget starves nobody: no pool ran dry (a hot fridge may still say "too busy")
    assert not [s for s in statuses if s.startswith("500") or "unavailable" in s], statuses

    over = {
        name: (n, running.budgets[name]) for name, n in most.items() if n > running.budgets[name]
    }
    assert not over, f"processes above their budget (held, budget): {over}"
    assert max(totals) <= planned <= BOUND, f"held {max(totals)}, planned {planned}: {most}"
