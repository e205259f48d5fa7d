"""A whole run: register the world, stock it, drive the day, settle, check, report.

One simulator process spends about as much CPU per request as the API answering it (httpx
and asyncio in Python), so one process cannot load several API processes. `Plan.processes`
splits a run over that many processes: each drives a world of its own (its own tag, seed
and share of the rate) and checks it; their figures are pooled into one report.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
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
    processes: int = 1

    def world(self) -> World:
        tag = self.tag or secrets.token_hex(3)
        customers = self.customers or max(20, 10 * self.fridges)
        return plan_world(tag, self.cities, self.fridges, customers)

    def parts(self) -> list[Plan]:
        """The plan split over its processes: world `TAG-pK`, seed + K, a share of the rate
        and of the connections."""
        tag = self.tag or secrets.token_hex(3)
        share = self.processes
        return [
            replace(
                self,
                seed=self.seed + k,
                rate=self.rate / share,
                customers=None if self.customers is None else max(1, self.customers // share),
                connections=max(4, self.connections // share),
                tag=f"{tag}-p{k}",
                processes=1,
            )
            for k in range(share)
        ]


@dataclass
class Outcome:
    report: dict[str, Any]
    findings: Findings
    ledger: dict[str, Any]
    figures: Figures = field(default_factory=Figures)
    cpu_seconds: float = 0.0
    """The simulator's own CPU over the run (all its processes)."""


def simulate_all(plan: Plan, tokens: Tokens, show: Show, profile: Profile | None = None) -> Outcome:
    """The run, in this process or split over `plan.processes` (then `tokens` must pickle);
    the parts' progress is shown added up (p50 and p99: the worst part's)."""
    if plan.processes <= 1:
        return asyncio.run(simulate(plan, tokens, show, profile))
    parts = plan.parts()
    show({"event": "ready", "tag": plan.tag, "processes": len(parts)})
    context = multiprocessing.get_context("spawn")  # no event loop or pool inherited
    with context.Manager() as manager, ProcessPoolExecutor(len(parts), mp_context=context) as pool:
        lines = manager.Queue()
        pending = [
            pool.submit(simulate_part, part, tokens, profile, lines, k)
            for k, part in enumerate(parts)
        ]
        latest: dict[int, dict[str, Any]] = {}
        while not all(f.done() for f in pending):
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.get("event") == "progress":
                latest[line.pop("part")] = line
                if len(latest) == len(parts):
                    show(added_up(list(latest.values())))
        done = [f.result() for f in pending]
    return pooled(plan, profile or Profile(), done)


def simulate_part(
    plan: Plan, tokens: Tokens, profile: Profile | None, lines: Any, part: int
) -> Outcome:
    """One process's share of a split run; its progress lines go to `lines` (a queue)."""
    return asyncio.run(
        simulate(plan, tokens, lambda line: lines.put({**line, "part": part}), profile)
    )


def added_up(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts' progress lines as one."""
    total = {key: sum(line[key] for line in lines) for key in ("requests", "orders", "errors")}
    worst = {
        key: max((line[key] for line in lines if line[key] is not None), default=None)
        for key in ("p50_ms", "p99_ms")
    }
    return {
        "event": "progress",
        "elapsed_s": max(line["elapsed_s"] for line in lines),
        "simulated": min(line["simulated"] for line in lines),
        **total,
        "rate": round(sum(line["rate"] for line in lines), 1),
        **worst,
    }


def run_report(
    tag: str | None,
    plan: Plan,
    profile: Profile,
    figures: Figures,
    seconds: float,
    findings: Findings,
) -> dict[str, Any]:
    """What a run reports (`--report`): its plan and profile, its figures, its invariants."""
    return {
        "tag": tag,
        "plan": plan.__dict__,
        "profile": profile.as_dict(),
        **figures.report(seconds),
        "invariants": findings.as_report(),
    }


def pooled(plan: Plan, profile: Profile, parts: list[Outcome]) -> Outcome:
    figures = Figures()
    findings = Findings()
    for part in parts:
        figures.merge(part.figures)
        findings.broken.extend(part.findings.broken)
        findings.unchecked.extend(part.findings.unchecked)
    seconds = max(part.report["seconds"] for part in parts)
    report = {
        **run_report(plan.tag, plan, profile, figures, seconds, findings),
        "simulator_cpu_s": round(sum(part.cpu_seconds for part in parts), 2),
        "parts": [part.report["tag"] for part in parts],
    }
    ledger = {"parts": [part.ledger for part in parts]}
    return Outcome(report, findings, ledger, figures, sum(part.cpu_seconds for part in parts))


async def simulate(
    plan: Plan, tokens: Tokens, show: Show, profile: Profile | None = None
) -> Outcome:
    profile = profile or Profile()
    cpu_before = time.process_time()
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
    report = run_report(world.tag, plan, profile, figures, seconds, findings)
    cpu = time.process_time() - cpu_before
    report["simulator_cpu_s"] = round(cpu, 2)
    saved = ledger(world, traffic.orders, traffic.prices)
    return Outcome(report, findings, saved, figures, cpu)


async def check_again(
    against: str, ledger_file: Path, tokens: Tokens, connections: int = 16
) -> Outcome:
    """The invariants of an earlier run (its ledger), checked again against the API now."""
    saved = json.loads(ledger_file.read_text())
    figures = Figures()
    findings = Findings()
    for part in saved.get("parts", [saved]):
        await check_part(against, part, tokens, connections, figures, findings)
    report = {
        "tag": saved.get("world", {}).get("tag"),
        "orders_by_final_status": dict(figures.final_statuses),
        "unknown_statuses": dict(figures.unknown_statuses),
        "invariants": findings.as_report(),
    }
    return Outcome(report, findings, saved, figures)


async def check_part(
    against: str,
    saved: dict[str, Any],
    tokens: Tokens,
    connections: int,
    figures: Figures,
    found: Findings,
) -> None:
    world = World.from_ids(saved["world"])
    orders = {o["order_id"]: PlacedOrder(**o) for o in saved["orders"]}
    prices = PriceBook.from_dict(saved["prices"]) if "prices" in saved else None
    api = Api(against, tokens, figures, connections)
    try:
        findings = await check(api, world, orders, figures, prices)
    finally:
        await api.close()
    found.broken.extend(findings.broken)
    found.unchecked.extend(findings.unchecked)


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


__all__ = [
    "CheckFailed",
    "Outcome",
    "Plan",
    "SetupFailed",
    "check_again",
    "simulate",
    "simulate_all",
]
