"""`farmacy simulate`: realistic traffic against a running API, then its invariants checked.

Exit 0 when every invariant held, 1 with the first counterexample when one broke, 2 when the
run could not be made (a setting, an API that refused to set the world up or to answer).
"""

from __future__ import annotations

import asyncio
import json
import sys
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
    from interfaces.simulator.run import Plan, SetupFailed, check_again, simulate

    host = urlsplit(against).hostname or "127.0.0.1"
    settings = signing_settings_or_exit(host)
    tokens = token_maker(settings.secret)
    console = Console(stderr=False)
    if shape not in ("lunch", "flat"):
        raise fail(f"--shape {shape!r}: lunch or flat")
    plan = Plan(against, seed, rate, duration, cities, fridges, customers, connections, tag)
    profile = Profile(flat=shape == "flat")
    try:
        if check_only is not None:
            outcome = asyncio.run(check_again(against, check_only, tokens, connections))
        elif console.is_terminal:
            with Live(console=console, refresh_per_second=4) as live:
                outcome = asyncio.run(simulate(plan, tokens, live_line(live), profile))
        else:
            outcome = asyncio.run(simulate(plan, tokens, json_line, profile))
    except (SetupFailed, CheckFailed) as error:
        raise fail(error) from None
    finish(outcome, report, ledger, console)


def token_maker(secret: str) -> Any:
    from interfaces.http.auth import Role, issue_token

    def make(role: str, subject: str) -> str:
        return issue_token(secret, Role(role), subject, timedelta(hours=12))

    return make


def json_line(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def live_line(live: Live) -> Show:
    def show(line: dict[str, Any]) -> None:
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
