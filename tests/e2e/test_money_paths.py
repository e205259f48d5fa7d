"""Money made real, end to end: the API, a worker, the fulfilment process and the simulated
processor, each a process of its own on one store: SQLite, then PostgreSQL (a database of the
module's own, dropped after). One test per path through the HTTP API; each checks the
simulator's ledger (what the processor says it did), not only Farmacy's view.

The simulator picks its behaviour by the amount's cents (.01 decline, .02 late, .03 never,
.04 twice, .05 out of order), so each path orders a meal priced for it. Windows are short
(payment 6 s, pickup 8 s) so expiry and no-shows happen within the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from interfaces.http.auth import Role, issue_token
from ops.root import build_write_side
from ops.settings import Settings
from tests.conftest import ADMIN_DSN, postgres_problem, unique
from tests.e2e.test_http_processes import free_port, start_api, wait_listening
from tests.integration.projection_processes import start_workers

ROOT = Path(__file__).resolve().parents[2]
PAYMENT_WINDOW = timedelta(seconds=6)
PICKUP_WINDOW = timedelta(seconds=8)
LATE = 10.0  # seconds the simulator takes to answer late: past the payment window
PRICES = {"ok": "6.50", "decline": "5.01", "late": "5.02", "never": "5.03", "twice": "5.04"}
PRICES |= {"out_of_order": "5.05", "missing": "6.20"}
WAIT = 40.0

pytestmark = pytest.mark.slow


def farmacy(settings: Settings, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """A `farmacy` command as its own process, logging to a file in the data directory."""
    with (settings.data_dir / f"{args[0]}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "interfaces.cli", *args],
            cwd=ROOT,
            env={**os.environ, **settings.as_env(), "FARMACY_LOG_FORMAT": "json", **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stack:
    settings: Settings
    api: str
    simulator: str
    fridge_id: str
    meals: dict[str, str]  # path -> meal id
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def headers(self, role: Role, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings.secret, role, subject)}"}

    def place(self, path: str, customer: str = "ana") -> str:
        body = {
            "fridge_id": self.fridge_id,
            "lines": [{"meal_id": self.meals[path], "quantity": 1}],
        }
        headers = {**self.headers(Role.CUSTOMER, customer), "Idempotency-Key": uuid.uuid4().hex}
        placed = httpx.post(f"{self.api}/orders", json=body, headers=headers, timeout=10)
        assert placed.status_code == 201, placed.text
        return str(placed.json()["order_id"])

    def order(self, order_id: str) -> dict[str, Any]:
        seen = httpx.get(
            f"{self.api}/orders/{order_id}", headers=self.headers(Role.OPERATOR, "op"), timeout=10
        )
        assert seen.status_code == 200, seen.text
        answer: dict[str, Any] = seen.json()
        return answer

    def ledger(self, order_id: str) -> dict[str, Any] | None:
        seen = httpx.get(f"{self.simulator}/ledger/{order_id}", timeout=10)
        if seen.status_code == 404:
            return None
        answer: dict[str, Any] = seen.json()
        return answer

    def post(self, path: str, body: dict[str, Any], role: Role, subject: str) -> httpx.Response:
        return httpx.post(
            f"{self.api}{path}", json=body, headers=self.headers(role, subject), timeout=10
        )

    def pick_up(self, order_id: str) -> None:
        taken = self.post(
            f"/fridges/{self.fridge_id}/pickups",
            {"order_id": order_id},
            Role.FRIDGE,
            self.fridge_id,
        )
        assert taken.status_code == 201, taken.text

    def status_becomes(self, order_id: str, expected: str, *, on_the_way: set[str]) -> None:
        """Wait (bounded) for the order's status; fail at once on any status not on the way."""
        allowed = {"placed", expected, *on_the_way}
        deadline = time.monotonic() + WAIT
        while (status := self.order(order_id)["status"]) != expected:
            assert status in allowed, f"order {order_id} went {status}, expected {expected}"
            assert time.monotonic() < deadline, f"order {order_id} still {status}"
            time.sleep(0.1)

    def webhooks_answered(self, order_id: str, count: int) -> list[dict[str, Any]]:
        """Wait (bounded) until the simulator delivered `count` webhooks about the order."""
        deadline = time.monotonic() + WAIT
        while True:
            entry = self.ledger(order_id)
            if entry is not None and len(entry["webhooks"]) >= count:
                return list(entry["webhooks"])
            assert time.monotonic() < deadline, f"webhooks of {order_id}: {entry}"
            time.sleep(0.1)

    def history_shows(self, order_id: str, step: str) -> dict[str, Any]:
        """Wait (bounded) until the order's history, as its customer reads it, has `step`."""
        deadline = time.monotonic() + WAIT
        while True:
            seen = self.get_own(order_id)
            if step in [s["status"] for s in seen["history"]]:
                return seen
            assert time.monotonic() < deadline, seen
            time.sleep(0.1)

    def get_own(self, order_id: str, customer: str = "ana") -> dict[str, Any]:
        seen = httpx.get(
            f"{self.api}/orders/{order_id}",
            headers=self.headers(Role.CUSTOMER, customer),
            timeout=10,
        )
        assert seen.status_code == 200, seen.text
        answer: dict[str, Any] = seen.json()
        return answer

    def fulfilment_caught_up(self) -> None:
        """Wait (bounded) until fulfilment has acted on every event (its lag on /metrics)."""
        deadline = time.monotonic() + WAIT
        while True:
            metrics = httpx.get(f"{self.api}/metrics", timeout=10).text
            lag = [
                line
                for line in metrics.splitlines()
                if line.startswith("farmacy_fulfilment_lag_events")
            ]
            if lag and float(lag[0].split()[1]) == 0:
                return
            assert time.monotonic() < deadline, lag
            time.sleep(0.1)

    def ledger_becomes(self, order_id: str, state: str) -> dict[str, Any]:
        """Wait (bounded) for the processor's ledger to say `state` for the order."""
        deadline = time.monotonic() + WAIT
        while True:
            entry = self.ledger(order_id)
            if entry is not None and entry["state"] == state:
                return entry
            assert time.monotonic() < deadline, f"ledger of {order_id}: {entry}"
            time.sleep(0.1)


def moves(entry: dict[str, Any]) -> list[str]:
    return [move["kind"] for move in entry["moves"]]


def wait_listening_to(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, f"{url} exited with {process.returncode}"
        try:
            httpx.get(f"{url}/ledger", timeout=1.0)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.05)


def start_fulfilment(stack: Stack, **env: str) -> None:
    """Fulfilment as a process of its own, once it is the active one: an order placed while a
    fresh process is still starting could outlive the short payment window on a busy machine
    (its lines say `trail_active` when it takes over)."""
    log = stack.settings.data_dir / "fulfil.log"
    active_before = times_active(log)
    process = stack.processes["fulfilment"] = farmacy(stack.settings, "fulfil", **env)
    deadline = time.monotonic() + 60
    while times_active(log) == active_before:
        assert process.poll() is None, f"fulfilment exited with {process.returncode}"
        assert time.monotonic() < deadline, "fulfilment did not become active"
        time.sleep(0.05)


def times_active(log: Path) -> int:
    """How many times a fulfilment process logging to `log` became the active one."""
    if not log.exists():
        return 0
    return log.read_text(errors="replace").count('"trail_active"')


def money_world(
    settings: Settings, prices: dict[str, str], units: dict[str, int]
) -> tuple[str, dict[str, str]]:
    """A city, venue and fridge holding a meal per path of `prices` (named after it, priced
    so the simulated processor behaves as the path says), `units[path]` of each: the fridge's
    id and the meal of each path."""
    side = build_write_side(settings)
    try:
        city, venue, fridge = unique("city"), unique("venue"), unique("fridge")
        side.catalogue.register_city(city, "Berlin", "Europe/Berlin")
        side.catalogue.register_venue(venue, city, "Gym")
        side.catalogue.install_fridge(fridge, venue)
        meals = {path: unique(path.replace("_", "-")) for path in prices}
        best_before = (datetime.now(UTC) + timedelta(days=2)).date()
        for path, meal in meals.items():
            side.catalogue.register_meal(meal, path, prices[path], "EUR")
            side.stock.deliver(fridge, unique("delivery"), {meal: units[path]}, best_before)
    finally:
        side.close()
    return fridge, meals


@contextmanager
def store_of_its_own(store: str, data_dir: Path) -> Iterator[Settings]:
    """Settings for a fresh store: a SQLite data directory, or a PostgreSQL database of its
    own, dropped afterwards (skipped where no server answers, as the suite's fixtures do)."""
    if store == "sqlite":
        yield Settings(store="sqlite", data_dir=data_dir)
        return
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    name = f"farmacy_money_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Settings(
            store="postgres", postgres_dsn=make_conninfo(ADMIN_DSN, dbname=name), data_dir=data_dir
        )
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    with store_of_its_own(request.param, tmp_path_factory.mktemp("money")) as fresh:
        yield from stack_on(fresh)


def stack_on(fresh: Settings) -> Iterator[Stack]:
    api_port, simulator_port = free_port(), free_port()
    settings = replace(
        fresh,
        payment_window=PAYMENT_WINDOW,
        pickup_window=PICKUP_WINDOW,
        payments_url=f"http://127.0.0.1:{simulator_port}",
    )
    units = {path: 1 if path == "missing" else 20 for path in PRICES}
    fridge, meals = money_world(settings, PRICES, units)
    stack = Stack(settings, f"http://127.0.0.1:{api_port}", settings.payments_url, fridge, meals)
    with running(stack, api_port, simulator_port, "--late", str(LATE)):
        yield stack


@contextmanager
def running(
    stack: Stack, api_port: int, simulator_port: int, *simulator_options: str
) -> Iterator[None]:
    """The stack's processes (API, a worker for reservations and orders, the simulated
    processor answering through the API's webhook at once, fulfilment), each stopped after."""
    settings = stack.settings
    try:
        stack.processes["api"] = start_api(settings, api_port)
        stack.processes["worker"] = start_workers(settings, ["reservations", "orders"])
        stack.processes["simulator"] = farmacy(
            settings, "payments", "simulate", "--port", str(simulator_port),
            "--webhook-url", f"{stack.api}/payments/webhook", "--delay", "0", *simulator_options,
        )  # fmt: skip
        start_fulfilment(stack)
        wait_listening(stack.api, stack.processes["api"])
        wait_listening_to(stack.simulator, stack.processes["simulator"])
        yield
    finally:
        for process in stack.processes.values():
            stop(process)


def test_authorised_ready_picked_up_and_captured(stack: Stack) -> None:
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
    assert stack.ledger_becomes(order_id, "authorised")["amount"] == "6.50"
    stack.pick_up(order_id)
    stack.status_becomes(order_id, "picked_up", on_the_way={"paid", "ready_for_pickup"})
    assert moves(stack.ledger_becomes(order_id, "captured")) == ["authorise", "capture"]


def test_declined(stack: Stack) -> None:
    order_id = stack.place("decline")
    stack.status_becomes(order_id, "payment_failed", on_the_way=set())
    history = stack.order(order_id)["history"]
    assert any("declined" in (step.get("detail") or "") for step in history), history
    assert moves(stack.ledger_becomes(order_id, "declined")) == []


def test_cancelled_before_payment(stack: Stack) -> None:
    order_id = stack.place("never")
    cancelled = stack.post(f"/orders/{order_id}/cancel", {}, Role.CUSTOMER, "ana")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    stack.fulfilment_caught_up()
    entry = stack.ledger(order_id)  # not asked (cancelled first), or asked and never answered
    assert entry is None or (entry["state"] == "pending" and moves(entry) == []), entry


def test_cancelled_after_authorisation_is_voided(stack: Stack) -> None:
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
    cancelled = stack.post(f"/orders/{order_id}/cancel", {}, Role.CUSTOMER, "ana")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "refunded"
    assert moves(stack.ledger_becomes(order_id, "voided")) == ["authorise", "void"]
    seen = stack.history_shows(order_id, "payment_voided")  # the customer sees it too
    assert seen["status"] == "refunded"
    assert all("sim-" not in str(step.get("detail")) for step in seen["history"]), seen


def test_duplicate_and_out_of_order_webhooks_move_the_order_once(stack: Stack) -> None:
    twice, stale = stack.place("twice"), stack.place("out_of_order")
    for order_id in (twice, stale):
        stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
        assert moves(stack.ledger_becomes(order_id, "authorised")) == ["authorise"]
    assert [w["status"] for w in stack.webhooks_answered(twice, 2)] == [200, 200]
    repeated = stack.webhooks_answered(twice, 2)
    assert repeated[0]["id"] == repeated[1]["id"]  # the same message, delivered twice
    overtaken = stack.webhooks_answered(stale, 2)
    # a stale copy (another id, 30 s older) is still within the tolerance: taken, no effect
    assert overtaken[0]["id"] != overtaken[1]["id"] and overtaken[1]["status"] == 200
    for order_id in (twice, stale):
        statuses = [step["status"] for step in stack.order(order_id)["history"]]
        assert statuses.count("paid") == 1, statuses


def test_meals_missing_on_a_paid_order_void_its_authorisation(stack: Stack) -> None:
    order_id = stack.place("missing")
    stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
    report = {
        "report_id": unique("report"),
        "taken_at": datetime.now(UTC).isoformat(),
        "counts": {stack.meals["missing"]: 0},
    }
    counted = stack.post(f"/fridges/{stack.fridge_id}/counts", report, Role.FRIDGE, stack.fridge_id)
    assert counted.status_code == 201, counted.text
    stack.status_becomes(order_id, "refunded", on_the_way={"paid", "ready_for_pickup"})
    assert moves(stack.ledger_becomes(order_id, "voided")) == ["authorise", "void"]


def test_an_operator_refund_after_pickup_returns_the_captured_money(stack: Stack) -> None:
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
    stack.pick_up(order_id)
    stack.ledger_becomes(order_id, "captured")
    stack.status_becomes(order_id, "picked_up", on_the_way={"paid", "ready_for_pickup"})
    unreasoned = stack.post(f"/orders/{order_id}/refund", {}, Role.OPERATOR, "op")
    assert unreasoned.status_code in {400, 422}
    by_customer = stack.post(f"/orders/{order_id}/refund", {"reason": "x"}, Role.CUSTOMER, "ana")
    assert by_customer.status_code == 403
    refunded = stack.post(
        f"/orders/{order_id}/refund", {"reason": "cold soup"}, Role.OPERATOR, "op"
    )
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    entry = stack.ledger_becomes(order_id, "refunded")
    assert moves(entry) == ["authorise", "capture", "refund"]
    history = stack.order(order_id)["history"]
    assert "operator: cold soup" in [step.get("detail") for step in history]


def test_a_late_authorisation_after_expiry_is_voided(stack: Stack) -> None:
    order_id = stack.place("late")
    stack.status_becomes(order_id, "expired", on_the_way=set())
    assert moves(stack.ledger_becomes(order_id, "voided")) == ["authorise", "void"]
    assert stack.order(order_id)["status"] == "expired"


def test_a_no_show_under_release_voids(stack: Stack) -> None:
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "not_collected", on_the_way={"paid", "ready_for_pickup"})
    assert moves(stack.ledger_becomes(order_id, "voided")) == ["authorise", "void"]


def test_a_no_show_under_charge_captures(stack: Stack) -> None:
    if stack.settings.store != "sqlite":  # the store's side is the release policy's (above)
        pytest.skip("the policy differs from release in the process only: SQLite suffices")
    stop(stack.processes["fulfilment"])  # the policy is the process's configuration
    start_fulfilment(stack, FARMACY_NO_SHOW="charge")
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "not_collected", on_the_way={"paid", "ready_for_pickup"})
    assert moves(stack.ledger_becomes(order_id, "captured")) == ["authorise", "capture"]


def test_fulfilment_position_and_lag_show_in_status_and_on_metrics(stack: Stack) -> None:
    order_id = stack.place("ok")
    stack.status_becomes(order_id, "ready_for_pickup", on_the_way={"paid"})
    metrics = httpx.get(f"{stack.api}/metrics", timeout=10).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("farmacy_fulfilment_")
    }
    assert values["farmacy_fulfilment_position"] > 0, metrics
    assert {"farmacy_fulfilment_lag_events", "farmacy_fulfilment_lag_seconds"} <= set(values)
    shown = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "projections", "status"],
        cwd=ROOT,
        env={**os.environ, **stack.settings.as_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    (row,) = [line for line in shown.stdout.splitlines() if "fulfilment" in line]
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[0] == "fulfilment" and int(cells[3]) >= values["farmacy_fulfilment_position"]
