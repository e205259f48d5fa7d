"""`farmacy run`, the main job of `make run`, as a user meets it: a real process tree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ops.demo import demo_deliveries, demo_order


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(
    method: str, url: str, token: str, body: dict[str, Any] | None = None, **headers: str
) -> Any:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def until(check: Any, seconds: float = 60.0) -> Any:
    """Poll until `check()` returns something truthy (a state, not a sleep in its place)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except (urllib.error.URLError, ConnectionError, KeyError):
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, "the main job did not get there in time"
        time.sleep(0.1)


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


def test_the_main_job_serves_orders_end_to_end_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FARMACY_DATA_DIR": str(tmp_path), "FARMACY_LOG_FORMAT": "json"}
    job = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        banner = until(lambda: job.stdout and job.stdout.readline().startswith("Farmacy API"))
        assert banner
        token = subprocess.run(
            [sys.executable, "-m", "interfaces.cli", "token", "customer", "--subject", "ana"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        venue_id, fridge_id, meal_id = demo_order()
        stocked = demo_deliveries()[fridge_id][meal_id]

        def menu_units(position: int | None = None) -> int:
            query = f"?min_position={position}" if position else ""
            menu = call("GET", f"{base}/venues/{venue_id}/menu{query}", token)
            return sum(i["available"] for i in menu["items"] if i["meal_id"] == meal_id)

        before = until(menu_units)
        assert before >= stocked
        order = call(
            "POST",
            f"{base}/orders",
            token,
            {"fridge_id": fridge_id, "lines": [{"meal_id": meal_id, "quantity": 1}]},
            **{"Idempotency-Key": "first-order"},
        )
        assert menu_units(order["position"]) == before - 1
        ready = until(
            lambda: (
                call("GET", f"{base}/orders/{order['order_id']}", token)["status"]
                == "ready_for_pickup"
            )
        )
        assert ready
    finally:
        workers = children_of(job.pid)
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=60)
    assert job.returncode == 0
    assert len(workers) == 9  # six read models, fulfilment, snapshots, the API
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
