"""The process manager killed with SIGKILL at random points while orders with mixed outcomes
go through, then restarted: nothing is charged, voided or refunded twice, no money is left
held for an order that ended, and every fridge's stock adds up.

The simulator's ledger is the witness. `make test` runs a short form (30 orders, 10 kills)
on SQLite; the long form is

    FARMACY_CRASH_ORDERS=500 FARMACY_CRASH_KILLS=30 .venv/bin/pytest tests/e2e/test_money_crash.py

and FARMACY_CRASH_STORE=postgres runs either form on PostgreSQL (a database of its own,
dropped after). The short form takes 40-50 s on the shared machine, too long to run twice in
the suite, so the suite runs the money paths on PostgreSQL (test_money_paths.py) and this
test on SQLite.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interfaces.http.auth import Role
from ops.root import build_write_side
from tests.e2e.test_http_processes import free_port
from tests.e2e.test_money_paths import (
    Stack,
    money_world,
    running,
    start_fulfilment,
    store_of_its_own,
)

ORDERS = int(os.environ.get("FARMACY_CRASH_ORDERS", "30"))
KILLS = int(os.environ.get("FARMACY_CRASH_KILLS", "10"))
STORE = os.environ.get("FARMACY_CRASH_STORE", "sqlite")
UNITS = 2 * ORDERS
PRICES = {"ok": "6.50", "decline": "5.01", "twice": "5.04", "five_xx": "5.06"}
SETTLE = 90.0 + ORDERS * 0.3

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path: Any) -> Iterator[Stack]:
    api_port, simulator_port = free_port(), free_port()
    with store_of_its_own(STORE, tmp_path) as fresh:
        settings = replace(
            fresh,
            payment_window=timedelta(minutes=10),
            pickup_window=timedelta(hours=1),
            payments_url=f"http://127.0.0.1:{simulator_port}",
        )
        fridge, meals = money_world(settings, PRICES, dict.fromkeys(PRICES, UNITS))
        api = f"http://127.0.0.1:{api_port}"
        stack = Stack(settings, api, settings.payments_url, fridge, meals)
        with running(stack, api_port, simulator_port):
            yield stack


def became_active(stack: Stack, times: int) -> None:
    """Wait (bounded) until fulfilment processes have become active `times` times in all."""
    log = stack.settings.data_dir / "fulfil.log"
    deadline = time.monotonic() + 60
    while log.read_bytes().count(b'"trail_active"') < times:
        assert time.monotonic() < deadline, "fulfilment never became active"
        time.sleep(0.05)


def killer(stack: Stack, kills: int, done: threading.Event, rng: random.Random) -> None:
    """SIGKILL the fulfilment process at random moments once it is at work, restarting it."""
    for kill in range(kills):
        became_active(stack, kill + 1)
        time.sleep(rng.uniform(0.05, 1.0))
        stack.processes["fulfilment"].send_signal(signal.SIGKILL)
        stack.processes["fulfilment"].wait()
        start_fulfilment(stack)
    done.set()


FINAL = {"picked_up", "payment_failed", "cancelled", "refunded", "expired"}


def settled(stack: Stack, plans: dict[str, str]) -> dict[str, str]:
    """Wait (bounded) until every order is final, or ready when nobody acts on it."""
    deadline = time.monotonic() + SETTLE
    while True:
        side = build_write_side(stack.settings)
        try:
            statuses = {o: str(side.ordering.order(o).status) for o in plans if _opened(side, o)}
        finally:
            side.close()
        open_ = [
            o
            for o, plan in plans.items()
            if statuses.get(o) not in FINAL
            and not (plan == "keep" and statuses.get(o) == "ready_for_pickup")
        ]
        if not open_ and money_settled(stack, statuses):
            return statuses
        assert time.monotonic() < deadline, {o: statuses.get(o) for o in open_[:10]}
        _act(stack, plans, statuses)
        time.sleep(0.5)


ENDED_UNPAID = {"cancelled", "refunded", "payment_failed", "expired"}


def money_settled(stack: Stack, statuses: dict[str, str]) -> bool:
    """Whether the processor has done what each order's state calls for (the flow moves the
    money after the order moves on): captured once picked up, nothing held once ended."""
    for order_id, status in statuses.items():
        entry = stack.ledger(order_id)
        state = None if entry is None else entry["state"]
        if status == "picked_up" and state != "captured":
            return False
        if status in ENDED_UNPAID and state == "authorised":
            return False
    return True


def _opened(side: Any, order_id: str) -> bool:
    try:
        side.ordering.order(order_id)
    except Exception:
        return False
    return True


def _act(stack: Stack, plans: dict[str, str], statuses: dict[str, str]) -> None:
    """Customers do what they planned once their order is ready: collect it or give it up."""
    for order_id, plan in plans.items():
        if statuses.get(order_id) != "ready_for_pickup":
            continue
        if plan == "collect":
            stack.pick_up(order_id)
        elif plan == "cancel_ready":
            stack.post(f"/orders/{order_id}/cancel", {}, Role.CUSTOMER, "ana")


def test_fulfilment_killed_at_random_moves_no_money_twice_and_loses_no_stock(
    stack: Stack,
) -> None:
    rng = random.Random(19)
    done = threading.Event()
    kills = threading.Thread(target=killer, args=(stack, KILLS, done, rng))
    kills.start()
    plans: dict[str, str] = {}
    meal_of: dict[str, str] = {}
    try:
        for _ in range(ORDERS):
            path = rng.choice(list(PRICES))
            order_id = stack.place(path, customer="ana")
            plan = rng.choice(["collect", "collect", "keep", "cancel_now", "cancel_ready"])
            plans[order_id], meal_of[order_id] = plan, stack.meals[path]
            if plan == "cancel_now":
                stack.post(f"/orders/{order_id}/cancel", {}, Role.CUSTOMER, "ana")
            time.sleep(rng.uniform(0, 0.15))
    finally:
        kills.join()
    statuses = settled(stack, plans)

    entries = {o: stack.ledger(o) for o in plans}
    for order_id, entry in entries.items():
        status = statuses.get(order_id)
        kinds = Counter(move["kind"] for move in (entry or {}).get("moves", []))
        assert all(count == 1 for count in kinds.values()), (order_id, kinds)
        state = None if entry is None else entry["state"]
        if state == "authorised":  # money held: only for an order still to be collected
            assert status == "ready_for_pickup", (order_id, status, entry)
        assert (state == "captured") == (status == "picked_up"), (order_id, status, state)
        if status in ENDED_UNPAID:
            assert state in {None, "pending", "declined", "voided"}, (order_id, status, state)

    side = build_write_side(stack.settings)
    try:
        fridge = side.catalogue.fridge(stack.fridge_id)
        today = fridge.today(datetime.now(UTC))
        for meal in stack.meals.values():
            ours = [o for o in plans if meal_of[o] == meal]
            taken = sum(1 for o in ours if statuses.get(o) == "picked_up")
            held = sum(1 for o in ours if statuses.get(o) == "ready_for_pickup")
            assert fridge.on_hand(meal, today) == UNITS - taken, meal
            assert fridge.available(meal, today) == UNITS - taken - held, meal
    finally:
        side.close()
