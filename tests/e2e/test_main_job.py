"""`farmacy run`, the main job of `make run`, as a user meets it: a real process tree."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from interfaces.cli.main import wait_until_healthy
from interfaces.http.operations import RUN_ID_HEADER
from ops.demo import demo_deliveries, demo_order
from ops.root import PROCESSES, build_write_side
from ops.settings import Settings
from projections.models import PROJECTIONS
from tests.loopback import address, serving


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
    """Poll until `check()` returns something truthy (a state, not a sleep in its place).

    Only "not yet" is waited out: nothing listening yet, or a 503 (a read model not built or
    behind, which asks to retry). Any other refusal, or an answer without what was asked
    for, fails at once with what the server said, not as a timeout."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except urllib.error.HTTPError as refused:
            if refused.code != 503:
                raise AssertionError(f"{refused.code}: {refused.read().decode()}") from None
            found = None
        except (urllib.error.URLError, ConnectionError):
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, "the main job did not get there in time"
        time.sleep(0.1)


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


def served_by(url: str, token: str) -> str:
    """Which API process answered a GET (its pid, as it says in X-Farmacy-Process)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.headers["X-Farmacy-Process"])


# One API process on the port, or two behind the load balancer there.
@pytest.mark.parametrize("api_processes", [1, 2])
def test_the_main_job_serves_orders_end_to_end_and_stops_cleanly(
    tmp_path: Path, api_processes: int
) -> None:
    port = free_port()
    env = {**os.environ, "FARMACY_DATA_DIR": str(tmp_path), "FARMACY_LOG_FORMAT": "json"}
    env.pop("FARMACY_SECRET", None)  # the demo makes its own
    # what the store already holds besides the demo (as on a restart) is what it reports
    side = build_write_side(Settings(store="sqlite", data_dir=tmp_path))
    side.catalogue.register_city("hamburg", "Hamburg", "Europe/Berlin")
    side.close()
    job = subprocess.Popen(
        [
            *(sys.executable, "-m", "interfaces.cli", "run", "--port", str(port)),
            *("--api-processes", str(api_processes)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert job.stdout is not None
        assert job.stdout.readline().startswith("Farmacy on sqlite: 3 cities, 5 venues, 9 fridges")

        def banner() -> bool:
            assert job.stdout is not None
            line = job.stdout.readline()
            assert line or job.poll() is None, f"the main job exited ({job.returncode})"
            return line.startswith("Farmacy API")

        assert until(banner)
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
            f"{base}/fridges/{fridge_id}/orders",
            token,
            {"lines": [{"meal_id": meal_id, "quantity": 1}]},
            **{"Idempotency-Key": "first-order"},
        )
        menus = {served_by(f"{base}/venues/{venue_id}/menu", token) for _ in range(4)}
        assert len(menus) == api_processes  # behind the balancer, reads reach every process
        assert menu_units(order["position"]) == before - 1

        def settled() -> str | None:
            """The order's status once the flow has moved it past placed and paid."""
            status: str = call("GET", f"{base}/orders/{order['order_id']}", token)["status"]
            return None if status in ("placed", "paid") else status

        assert until(settled) == "ready_for_pickup"
    finally:
        workers = children_of(job.pid)
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=60)
    assert job.returncode == 0
    # a worker per read model, every other process of the root's table, and the API (or
    # api_processes of them and the balancer in front)
    balancer = 1 if api_processes > 1 else 0
    assert len(workers) == len(PROJECTIONS) + (len(PROCESSES) - 1) + api_processes + balancer
    left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not left, left


@pytest.mark.parametrize("chosen_by", ["--port", "FARMACY_PORT"])
def test_a_port_in_use_is_one_line_naming_it_and_nothing_starts(
    tmp_path: Path, chosen_by: str
) -> None:
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        env = {**os.environ, "FARMACY_DATA_DIR": str(tmp_path), "FARMACY_LOG_FORMAT": "json"}
        args = [sys.executable, "-m", "interfaces.cli", "run"]
        if chosen_by == "--port":
            args += ["--port", str(port)]
        else:
            env["FARMACY_PORT"] = str(port)
        job = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert job.returncode == 2
    assert job.stderr.strip().splitlines() == [
        f"farmacy: port {port} on 127.0.0.1 is in use: stop what listens there, or choose "
        "another (make run PORT=8123, or FARMACY_PORT)"
    ]
    assert "Farmacy API" not in job.stdout and not (tmp_path / "events.sqlite").exists()


class Healthz(BaseHTTPRequestHandler):
    run_id = ""

    def do_GET(self) -> None:
        self.send_response(200)
        if self.run_id:
            self.send_header(RUN_ID_HEADER, self.run_id)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *_: Any) -> None:
        pass


@pytest.mark.parametrize(("answers_with", "ours"), [("", False), ("other", False), ("mine", True)])
def test_the_main_job_takes_only_its_own_api_for_healthy(answers_with: str, ours: bool) -> None:
    handler = type("Answering", (Healthz,), {"run_id": answers_with})
    with serving(handler) as server:
        seconds = 30.0 if ours else 1.0  # ours passes at once; another's never does
        base = f"http://{address(server)}"
        assert wait_until_healthy(base, threading.Event(), "mine", seconds) is ours
