"""The commands for the world around the fridges: promotions from spreadsheets, the expiry
scheduler, the fridge cloud's poller and the kitchen's plan."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from application.clock import utc_now
from application.errors import StoreUnavailable
from application.promotions import SheetRejected
from interfaces.cli.exits import fail, metrics_port_option, run_until_stopped, settings_or_exit
from interfaces.http.reading import ReadModelNotBuilt, ReadSide
from interfaces.spreadsheets import UnreadableSheet, read_sheet
from ops.logging import configure_logging
from ops.root import Root, missing_store, open_database

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


def expiry_command(metrics_port: int = metrics_port_option()) -> None:
    """Run the expiry scheduler: at each fridge's local midnight, take expired batches off
    its shelf (recorded as waste) and release the reservations that lost their meals."""
    configure_logging()
    run_until_stopped(lambda settings, stop: Root(settings).run("expiry", stop), metrics_port)


fridges_app = typer.Typer(help="The fridge cloud.", no_args_is_help=True)


@fridges_app.command("poll")
def poll_command(metrics_port: int = metrics_port_option()) -> None:
    """Read counts from the fridge vendor's API (FARMACY_FRIDGE_CLOUD_URL) for every fridge,
    and mark fridges silent for FARMACY_STALE_AFTER seconds stale, until stopped."""
    configure_logging()
    run_until_stopped(lambda settings, stop: Root(settings).run("poller", stop), metrics_port)


kitchen_app = typer.Typer(help="The kitchen's plan.", no_args_is_help=True)
PLAN_COLUMNS = (
    "date",
    "fridge_id",
    "venue_id",
    "meal_id",
    "sold_by_weekday",
    "target",
    "expected_waste",
    "sellable",
    "held",
    "expiring",
    "to_deliver",
    "delivered",
    "short",
    "over",
)


@kitchen_app.command("plan")
def plan_command(
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="YYYY-MM-DD"),
    output: str = typer.Option("csv", "--format", help="csv or json"),
    weeks: int = typer.Option(4, min=1, max=12, help="weeks of sales by weekday to plan from"),
    cover: float = typer.Option(
        1.0, min=0.1, max=7.0, help="target stock, in days of that weekday's sales"
    ),
) -> None:
    """Per fridge and meal, what to deliver on a date, from the refill plan's read model (as
    `GET /kitchen/refill-plan?date=` answers), for the kitchen's own systems."""
    if output not in ("csv", "json"):
        raise fail(f"--format {output!r}: choose csv or json")
    configure_logging("WARNING")
    settings = settings_or_exit()
    try:
        missing = missing_store(settings)
    except StoreUnavailable as error:
        raise fail(error) from None
    if missing:
        raise fail(missing)
    read = ReadSide({"refill_plan": open_database(settings, "refill_plan")})
    try:
        answer = read.refill_plan.plan_for(utc_now(), day.date(), weeks, cover)
    except ReadModelNotBuilt as error:
        raise fail(error) from None
    finally:
        read.close()
    rows = [
        {
            column: _plain(getattr(line, "day" if column == "date" else column))
            for column in PLAN_COLUMNS
        }
        for line in answer.value
    ]
    if output == "json":
        typer.echo(
            json.dumps(
                {"date": day.date().isoformat(), "position": answer.position, "items": rows},
                indent=2,
            )
        )
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PLAN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(out.getvalue(), nl=False)


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


def register(app: typer.Typer) -> None:
    """Add `promotions import`, `expiry`, `fridges poll` and `kitchen plan` to `farmacy`."""
    app.add_typer(promotions_app, name="promotions")
    app.command("expiry")(expiry_command)
    app.add_typer(fridges_app, name="fridges")
    app.add_typer(kitchen_app, name="kitchen")
