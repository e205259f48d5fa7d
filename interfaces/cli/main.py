"""The `farmacy` command. Entry points stay thin: parse, call one service, report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

from application.errors import StoreUnavailable
from ops.bootstrap import WriteSide, build_write_side
from ops.demo import seed_demo, venue_stock
from ops.logging import configure_logging
from ops.settings import SETTINGS_HELP, Settings, SettingsError

EPILOG = "Configuration (environment):\n\n" + "\n\n".join(
    f"{name}: {meaning}" for name, meaning in SETTINGS_HELP.items()
)

app = typer.Typer(
    help="Farmacy: fresh meals from smart fridges, event-sourced.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@contextmanager
def write_side() -> Iterator[WriteSide]:
    """The write side for this command, or a one-line error naming the setting to fix."""
    configure_logging("WARNING")
    try:
        side = build_write_side(Settings.from_env())
    except (SettingsError, StoreUnavailable) as error:
        typer.echo(f"farmacy: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        yield side
    finally:
        side.close()


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Register the demo cities, venues, fridges and meals, and stock the fridges."""
    with write_side() as side:
        seeded = seed_demo(side)
    console.print(
        f"demo: {seeded.cities} cities, {seeded.venues} venues, {seeded.fridges} fridges, "
        f"{seeded.meals} meals ({seeded.deliveries} new deliveries)"
    )


@app.command("run")
def run_command() -> None:
    """The main job: seed the demo data and show every venue's stock."""
    with write_side() as side:
        seeded = seed_demo(side)
        stock = venue_stock(side)
    console.print(
        f"[bold]Farmacy[/bold] on {side.settings.store}: {seeded.fridges} fridges in "
        f"{seeded.venues} venues"
    )
    for venue_id, meals in stock.items():
        table = Table(title=venue_id, show_header=True)
        table.add_column("meal")
        table.add_column("available", justify="right")
        for meal_id, units in sorted(meals.items()):
            table.add_row(meal_id, str(units))
        console.print(table)


def main() -> None:  # pragma: no cover - console script shim
    app()
