"""One order followed across processes by one id: placed over HTTP with X-Request-Id and
X-Correlation-Id, acted on by a worker and the process manager (each a process of its own,
logging JSON to a file), then found by that correlation id in the stored events, in the
worker's and the process manager's log lines, and in `farmacy trace`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from interfaces.http.auth import Role, issue_token
from ops.settings import Settings
from tests.e2e.test_http_processes import free_port, start_api, wait_listening
from tests.e2e.test_money_paths import ROOT, farmacy, money_world, stop, wait_listening_to

pytestmark = pytest.mark.slow
WAIT = 40.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, str]]:
    """The API, a worker for orders and reservations (debug lines: one per event), the
    simulated processor and fulfilment, on one SQLite store; the settings, the API's URL and
    the fridge."""
    api_port, simulator_port = free_port(), free_port()
    settings = replace(
        Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("trace")),
        payments_url=f"http://127.0.0.1:{simulator_port}",
    )
    fridge_id, meals = money_world(settings, {"ok": "6.50"}, {"ok": 5})
    api = f"http://127.0.0.1:{api_port}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start_api(settings, api_port))
        processes.append(
            farmacy(
                settings, "worker", "-p", "orders", "-p", "reservations", FARMACY_LOG_LEVEL="DEBUG"
            )
        )
        simulator = farmacy(
            settings, "payments", "simulate", "--port", str(simulator_port),
            "--webhook-url", f"{api}/payments/webhook", "--delay", "0",
        )  # fmt: skip
        processes.append(simulator)
        processes.append(farmacy(settings, "fulfil"))
        wait_listening(api, processes[0])
        wait_listening_to(settings.payments_url or "", simulator)
        yield settings, api, f"{fridge_id} {meals['ok']}"
    finally:
        for process in processes:
            stop(process)


def log_lines(settings: Settings, process: str) -> list[dict[str, Any]]:
    path = settings.data_dir / f"{process}.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def until(found: Any, what: str) -> Any:
    """Poll `found()` until it answers something truthy, or fail naming `what`."""
    deadline = time.monotonic() + WAIT
    while not (answer := found()):
        assert time.monotonic() < deadline, f"no {what} within {WAIT} s"
        time.sleep(0.1)
    return answer


def trace(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "trace", *args],
        cwd=ROOT,
        env={**os.environ, **settings.as_env(), "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_one_correlation_id_follows_an_order_through_every_process(
    stack: tuple[Settings, str, str],
) -> None:
    settings, api, where = stack
    fridge_id, meal_id = where.split()
    request_id, correlation_id = f"req-{uuid.uuid4().hex}", f"checkout-{uuid.uuid4().hex}"
    token = issue_token(settings.secret, Role.CUSTOMER, "ana")
    placed = httpx.post(
        f"{api}/orders",
        json={"fridge_id": fridge_id, "lines": [{"meal_id": meal_id, "quantity": 1}]},
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "X-Request-Id": request_id,
            "X-Correlation-Id": correlation_id,
        },
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    assert placed.headers["x-correlation-id"] == correlation_id
    order_id = placed.json()["order_id"]

    # The process manager opened the order and asked for the money, on lines with the id.
    def fulfilment_steps() -> set[str]:
        return {
            line["step"]
            for line in log_lines(settings, "fulfil")
            if line.get("event") == "fulfilment_step"
            and line.get("order_id") == order_id
            and line.get("correlation_id") == correlation_id
        }

    until(lambda: {"OpenOrder", "RequestPayment"} <= fulfilment_steps(), "fulfilment lines")
    # The worker applied the reservation and the order's birth, on lines with the ids.
    projected = until(
        lambda: {
            (line["projection"], line["type"])
            for line in log_lines(settings, "worker")
            if line.get("event") == "event_projected" and line.get("order_id") == order_id
            and line.get("correlation_id") == correlation_id
        } >= {("reservations", "Fridge.MealsReserved"), ("orders", "Order.Placed")},
        "worker lines",
    )  # fmt: skip
    assert projected
    reserved_line = next(
        line
        for line in log_lines(settings, "worker")
        if line.get("type") == "Fridge.MealsReserved" and line.get("order_id") == order_id
    )
    assert reserved_line["request_id"] == request_id

    # The stored events, as `farmacy trace` reads them back.
    answered = trace(settings, order_id, "--json")
    assert answered.returncode == 0, answered.stderr
    steps = [json.loads(line) for line in answered.stdout.splitlines()]
    by_type = {step["type"]: step for step in steps}
    reserved, born = by_type["Fridge.MealsReserved"], by_type["Order.Placed"]
    assert (reserved["request_id"], reserved["correlation_id"], reserved["process"]) == (
        request_id,
        correlation_id,
        "api",
    )
    assert reserved["caused_by"] == "request"
    assert (born["correlation_id"], born["process"]) == (correlation_id, "fulfilment")
    assert born["caused_by"] == f"#{reserved['position']} Fridge.MealsReserved"
    positions = [step["position"] for step in steps]
    assert positions == sorted(positions) and all(isinstance(p, int) for p in positions)

    table = trace(settings, order_id)
    assert table.returncode == 0, table.stderr
    assert correlation_id in table.stdout and "Order.Placed" in table.stdout


def test_an_unknown_order_is_named_and_the_trace_fails(stack: tuple[Settings, str, str]) -> None:
    settings = stack[0]
    missing = str(uuid.uuid4())
    answered = trace(settings, missing)
    assert answered.returncode == 2
    assert answered.stderr.strip() == f"farmacy: no order {missing!r} in the event store"
