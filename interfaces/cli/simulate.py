"""`farmacy simulate`: realistic traffic against a running API, then its invariants checked.

Exit 0 when every invariant held, 1 with the first counterexample when one broke, 2 when the
run could not be made (a setting, an API that refused to set the world up or to answer).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.live import Live

from interfaces.cli.exits import fail, signing_settings_or_exit

if TYPE_CHECKING:
    from interfaces.simulator.run import Outcome, Show


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)


def simulate_command(
    against: str = typer.Option(
        ..., "--against", help="the API's base URL, e.g. http://127.0.0.1:8000"
    ),
    seed: int = typer.Option(1, help="plans the same day again"),
    rate: float = typer.Option(
        50.0, min=0.0, help="customers' requests per second at the lunch peak"
    ),
    duration: float = typer.Option(
        60.0, min=1.0, help="real seconds the simulated day (07-21 h) takes"
    ),
    cities: int = typer.Option(2, min=1, max=50),
    fridges: int = typer.Option(6, min=1, max=5000),
    customers: int = typer.Option(None, min=1, help="customer accounts (default 10 per fridge)"),
    connections: int = typer.Option(32, min=1, max=1024, help="HTTP connections at most"),
    processes: int = typer.Option(
        1,
        min=1,
        max=64,
        help="split the run over this many simulator processes, each with a world of its own "
        "(TAG-pK) and a share of the rate: one process spends about a core at 250 requests/s",
    ),
    shape: str = typer.Option("lunch", help="lunch (the day's shape) or flat (peak all day)"),
    tag: str = typer.Option(None, help="names the run's world: sim-TAG-... (default random)"),
    report: Path = typer.Option(None, help="write the run's figures here as JSON"),
    ledger: Path = typer.Option(None, help="write the world and acknowledged orders here"),
    check_only: Path = typer.Option(
        None, "--check-only", help="no traffic: check a ledger's world again, now"
    ),
) -> None:
    """Drive a running API with a day of kitchen, fridge, customer and operator traffic, then
    check the invariants through it (docs/capacity.md describes the profile)."""
    # imported here: the other commands need no HTTP client
    from interfaces.simulator.check import CheckFailed
    from interfaces.simulator.profile import Profile
    from interfaces.simulator.run import Plan, SetupFailed, check_again, simulate_all

    host = urlsplit(against).hostname or "127.0.0.1"
    settings = signing_settings_or_exit(host)
    tokens = Signer(settings.secret)
    console = Console(stderr=False)
    if shape not in ("lunch", "flat"):
        raise fail(f"--shape {shape!r}: lunch or flat")
    plan = Plan(
        against, seed, rate, duration, cities, fridges, customers, connections, tag, processes
    )
    profile = Profile(flat=shape == "flat")
    try:
        if check_only is not None:
            outcome = asyncio.run(check_again(against, check_only, tokens, connections))
        elif console.is_terminal:
            with Live(console=console, refresh_per_second=4) as live:
                outcome = simulate_all(plan, tokens, live_line(live), profile)
        else:
            outcome = simulate_all(plan, tokens, json_line, profile)
    except (SetupFailed, CheckFailed) as error:
        raise fail(error) from None
    finish(outcome, report, ledger, console)


@dataclass(frozen=True)
class Signer:
    """(role, subject) -> a bearer token signed with the API's secret; a class, so that the
    simulator's other processes can be handed it."""

    secret: str

    def __call__(self, role: str, subject: str) -> str:
        from interfaces.http.auth import Role, issue_token

        return issue_token(self.secret, Role(role), subject, timedelta(hours=12))


def json_line(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def live_line(live: Live) -> Show:
    def show(line: dict[str, Any]) -> None:
        if line.get("event") == "ready" and "processes" in line:
            live.console.print(f"{line['processes']} simulator processes: figures at the end")
            return
        if line.get("event") == "ready":
            live.console.print(
                f"world sim-{line['tag']}: {line['cities']} cities, {line['fridges']} fridges"
            )
            return
        live.update(
            f"[{line['simulated']}] {line['requests']} requests ({line['rate']}/s), "
            f"{line['orders']} orders, {line['errors']} errors, "
            f"p50 {line['p50_ms']} ms, p99 {line['p99_ms']} ms"
        )

    return show


def finish(outcome: Outcome, report: Path | None, ledger: Path | None, console: Console) -> None:
    if report is not None:
        report.write_text(json.dumps(outcome.report, indent=2, default=str))
    if ledger is not None:
        ledger.write_text(json.dumps(outcome.ledger, default=str))
    summary = {
        "event": "summary",
        **{k: outcome.report.get(k) for k in ("tag", "requests", "rate", "p50_ms", "p99_ms")},
        "orders": outcome.report.get("orders"),
        "orders_by_final_status": outcome.report.get("orders_by_final_status"),
        "errors": outcome.report.get("errors"),
        "invariants": outcome.report["invariants"],
    }
    if console.is_terminal:
        console.print_json(data=summary)
    else:
        json_line(summary)
    first = outcome.findings.first
    if first is not None:
        typer.echo(f"farmacy: invariant broken: {first}", err=True)
        raise typer.Exit(1)
