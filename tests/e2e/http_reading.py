"""An API with the read side live: every projection's worker runs in a thread of the test
process, apart from the API object (which only reads the models), as `farmacy worker` would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role
from ops.root import Root
from projections.models import PROJECTIONS
from tests.e2e.http_client import Api
from tests.integration.world import World


@pytest.fixture
def live_api(api: Api) -> Iterator[Api]:
    """`api` with a worker per read model running until the test ends."""
    stop = threading.Event()
    errors: list[str] = []

    def work() -> None:
        root = Root(api.side.settings, store=api.side.store)
        errors.extend(root.run("worker", stop, names=sorted(PROJECTIONS), batch_size=100))

    thread = threading.Thread(target=work, name="workers", daemon=True)
    thread.start()
    try:
        try:
            wait_ready(api)
        except AssertionError as not_ready:
            stop.set()
            thread.join(timeout=30)
            raise AssertionError(f"{not_ready}; the workers said {errors!r}") from not_ready
        yield api
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors


def wait_ready(api: Api, timeout: float = 30.0) -> None:
    """Poll /readyz until every worker runs and is caught up (or fail, with its reasons)."""
    deadline = time.monotonic() + timeout
    while True:
        ready = api.client.get("/readyz")
        if ready.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout} s: {ready.text}")
        time.sleep(0.05)


def menu(api: Api, min_position: int | None = None, **headers: str) -> httpx.Response:
    params = {} if min_position is None else {"min_position": min_position}
    return api.client.get(
        f"/venues/{api.world.venue_id}/menu",
        params=params,
        headers={**api.as_(Role.CUSTOMER, "ana"), **headers},
    )


def available(answer: httpx.Response) -> dict[str, int]:
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return {item["meal_id"]: item["available"] for item in items}


def position(answer: httpx.Response) -> int:
    found: int = answer.json()["position"]
    return found


def orders_while_reading(
    api: Api,
    worlds: Sequence[World],
    key: Callable[[World], str],
    tries: Mapping[str, int],
    readers: int,
    read_once: Callable[[int], None],
) -> list[tuple[str, int]]:
    """Each world's writer orders one soup at a time, `tries[key(world)]` times (those past
    its stock are sold out: 409), on a thread of its own, while `readers` threads call
    `read_once(n)` over and over until every writer is done. The (key, position) of each
    order placed."""
    placed: list[tuple[str, int]] = []
    writing = threading.Event()
    writing.set()

    def write(world: World) -> None:
        name = key(world)
        for n in range(tries[name]):
            answer = api.order(f"w-{name}", f"k{n}", {world.soup: 1}, world.fridge_id)
            assert answer.status_code in (201, 409), answer.text
            if answer.status_code == 201:
                placed.append((name, position(answer)))

    def read(n: int) -> None:
        while writing.is_set():
            read_once(n)

    with ThreadPoolExecutor(readers + len(worlds)) as pool:
        reading = [pool.submit(read, n) for n in range(readers)]
        writers = [pool.submit(write, world) for world in worlds]
        for writer in writers:
            writer.result(timeout=60)
        writing.clear()
        for reader in reading:
            reader.result(timeout=60)
    return placed
