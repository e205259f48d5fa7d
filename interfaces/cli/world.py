"""The commands for the world around the fridges: promotions from spreadsheets, the expiry
scheduler, the fridge cloud's poller and the kitchen's plan."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from application.errors import StoreUnavailable
from application.promotions import SheetRejected
from interfaces.cli.exits import fail, run_until_stopped, settings_or_exit
from interfaces.spreadsheets import UnreadableSheet, read_sheet
from ops.logging import configure_logging
from ops.root import Root

console = Console()
promotions_app = typer.Typer(help="Promotional campaigns from spreadsheets.", no_args_is_help=True)


@promotions_app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, XLSX or ODS"),
) -> None:
    """Import a sheet of promotions: all of it, or (with any bad row) nothing.

    Columns: campaign, meal, scope (city:<id> or venue:<id>), percent_off or fixed_price,
    starts_at, ends_at (local time of the scope's city unless timezone is given), timezone.
    The same file imported again changes nothing.
    """
    configure_logging("WARNING")
    try:
        sheet = read_sheet(file.name, file.read_bytes())
    except UnreadableSheet as error:
        raise fail(f"{file}: {error}") from None
    try:
        side = Root(settings_or_exit()).write_side()
    except StoreUnavailable as error:
        raise fail(error) from None
    try:
        done = side.promotions.import_sheet(sheet)
    except SheetRejected as rejected:
        show_problems(rejected)
        raise typer.Exit(1) from None
    finally:
        side.close()
    if done.created:
        console.print(
            f"imported {done.promotions} promotions of {len(done.campaign_ids)} campaigns "
            f"({', '.join(done.campaign_ids)}) from {file.name}"
        )
    else:
        console.print(f"{file.name} was imported before (the same content): nothing changed")


def show_problems(rejected: SheetRejected) -> None:
    table = Table(title=str(rejected), show_header=True)
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("reason")
    for problem in rejected.problems[:1000]:
        table.add_row(str(problem.row), problem.column, problem.reason)
    Console(stderr=True).print(table)


def expiry_command() -> None:
    """Run the expiry scheduler: at each fridge's local midnight, take expired batches off
    its shelf (recorded as waste) and release the reservations that lost their meals."""
    configure_logging()
    run_until_stopped(lambda settings, stop: Root(settings).run("expiry", stop))


fridges_app = typer.Typer(help="The fridge cloud.", no_args_is_help=True)


@fridges_app.command("poll")
def poll_command() -> None:
    """Read counts from the fridge vendor's API (FARMACY_FRIDGE_CLOUD_URL) for every fridge,
    and mark fridges silent for FARMACY_STALE_AFTER seconds stale, until stopped."""
    configure_logging()
    run_until_stopped(lambda settings, stop: Root(settings).run("poller", stop))


def register(app: typer.Typer) -> None:
    """Add `promotions import`, `expiry` and `fridges poll` to the `farmacy` command."""
    app.add_typer(promotions_app, name="promotions")
    app.command("expiry")(expiry_command)
    app.add_typer(fridges_app, name="fridges")
