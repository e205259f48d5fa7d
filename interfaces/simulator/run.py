"""A whole run: register the world, stock it, drive the day, settle, check, report."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interfaces.simulator.check import CheckFailed, Findings, check
from interfaces.simulator.client import Api, Tokens
from interfaces.simulator.figures import Figures
from interfaces.simulator.prices import PriceBook
from interfaces.simulator.profile import Day, Profile
from interfaces.simulator.traffic import PlacedOrder, Traffic
from interfaces.simulator.world import SetupFailed, World, plan_world, register

Show = Callable[[dict[str, Any]], None]
"""Where progress lines go: a live line on a terminal, JSON lines otherwise."""

LAST_SESSIONS = 60.0
"""Seconds the customers still in the fridge's queue at closing get to finish."""


@dataclass(frozen=True)
class Plan:
    against: str
    seed: int = 1
    rate: float = 50.0
    duration: float = 60.0
    cities: int = 2
    fridges: int = 6
    customers: int | None = None
    connections: int = 32
    tag: str | None = None

    def world(self) -> World:
        tag = self.tag or secrets.token_hex(3)
        customers = self.customers or max(20, 10 * self.fridges)
        return plan_world(tag, self.cities, self.fridges, customers)


@dataclass
class Outcome:
    report: dict[str, Any]
    findings: Findings
    ledger: dict[str, Any]


async def simulate(
    plan: Plan, tokens: Tokens, show: Show, profile: Profile | None = None
) -> Outcome:
    profile = profile or Profile()
    figures = Figures()
    api = Api(plan.against, tokens, figures, plan.connections)
    world = plan.world()
    day = Day(profile, plan.duration)
    traffic = Traffic(
        api, world, day, plan.rate, plan.seed, figures, max_sessions=plan.connections * 8
    )
    try:
        await register(api, world)
        await traffic.morning()
        show(
            {
                "event": "ready",
                "tag": world.tag,
                "fridges": len(world.fridges),
                "cities": len(world.cities),
            }
        )
        figures.started = traffic.started = time.monotonic()
        progress = asyncio.create_task(report_progress(figures, day, show))
        actors = [traffic.customers(), traffic.refill(), traffic.operator()]
        actors += [traffic.fridge_device(f) for f in world.fridges.values()]
        await asyncio.gather(*actors)
        figures.in_day = (figures.total(), time.monotonic() - traffic.started)
        if traffic.sessions:
            _, late = await asyncio.wait(set(traffic.sessions), timeout=LAST_SESSIONS)
            for task in late:
                task.cancel()
            figures.outcomes["sessions_cut_off"] += len(late)
        seconds = time.monotonic() - traffic.started
        progress.cancel()
        show({**figures.progress(day.clock(seconds)), "event": "closed"})
        findings = await check(api, world, traffic.orders, figures, traffic.prices)
    finally:
        await api.close()
    for counterexample in traffic.broken:
        findings.fail("idempotency", counterexample)
    findings.unchecked.extend(figures.notes)
    report = {
        "tag": world.tag,
        "plan": plan.__dict__,
        "profile": profile.as_dict(),
        **figures.report(seconds),
        "invariants": {
            "broken": [f"{name}: {example}" for name, example in findings.broken],
            "unchecked": findings.unchecked,
        },
    }
    return Outcome(report, findings, ledger(world, traffic.orders, traffic.prices))


async def check_again(
    against: str, ledger_file: Path, tokens: Tokens, connections: int = 16
) -> Outcome:
    """The invariants of an earlier run (its ledger), checked again against the API now."""
    saved = json.loads(ledger_file.read_text())
    world = World.from_ids(saved["world"])
    orders = {o["order_id"]: PlacedOrder(**o) for o in saved["orders"]}
    prices = PriceBook.from_dict(saved["prices"]) if "prices" in saved else None
    figures = Figures()
    api = Api(against, tokens, figures, connections)
    try:
        findings = await check(api, world, orders, figures, prices)
    finally:
        await api.close()
    report = {
        "tag": world.tag,
        "orders_by_final_status": dict(figures.final_statuses),
        "unknown_statuses": dict(figures.unknown_statuses),
        "invariants": {
            "broken": [f"{name}: {example}" for name, example in findings.broken],
            "unchecked": findings.unchecked,
        },
    }
    return Outcome(report, findings, saved)


def ledger(world: World, orders: dict[str, PlacedOrder], prices: PriceBook) -> dict[str, Any]:
    return {
        "world": world.ids(),
        "orders": [o.as_dict() for o in orders.values()],
        "prices": prices.as_dict(),
    }


async def report_progress(figures: Figures, day: Day, show: Show) -> None:
    while True:
        await asyncio.sleep(1.0)
        show(figures.progress(day.clock(time.monotonic() - figures.started)))


__all__ = ["CheckFailed", "Outcome", "Plan", "SetupFailed", "check_again", "simulate"]
