"""`farmacy trace ORDER_ID`: one order's way through every process (docs/operations.md,
"Follow one order"): a table on a terminal, JSON lines with `--json`."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from application.errors import NotFound, StoreUnavailable
from application.store import EventStore
from application.trail import Step, order_trail
from interfaces.cli.exits import fail, settings_or_exit
from interfaces.cli.projections import existing_store_or_exit, model_file
from ops.logging import configure_logging
from ops.positions import stream_positions
from ops.root import open_database, open_event_store
from ops.settings import Settings
from projections.feed import Feed, relay_statuses
from projections.integration import CONTRACT

COLUMNS = (
    *("position", "at", "stream", "type", "process"),
    *("request_id", "correlation_id", "caused_by", "relayed"),
)
IN_THE_FEED = frozenset(cls.__qualname__ for cls in CONTRACT)


def register(app: typer.Typer) -> None:
    app.command("trace")(trace_command)


def trace_command(
    order_id: str = typer.Argument(..., help="the order's id, as POST /orders answered it"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line, not a table"),
) -> None:
    """One order's way through every process: its events and its fridge's events about it, with
    time, position, type, the request and correlation ids and the process that recorded each."""
    configure_logging("WARNING")
    settings = settings_or_exit()
    existing_store_or_exit(settings)
    try:
        store = open_event_store(settings)
    except StoreUnavailable as error:
        raise fail(error) from None
    try:
        steps = order_trail(store, order_id, partial(stream_positions, store))
        relayed = relay_position(settings, store)
    except NotFound:
        raise fail(f"no order {order_id!r} in the event store") from None
    finally:
        store.close()
    rows = lines(steps, relayed)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"order {order_id}", show_header=True)
    for column in COLUMNS:
        table.add_column(
            column.replace("_", " "), justify="right" if column == "position" else "left"
        )
    for row in rows:
        table.add_row(*(cell(row[column]) for column in COLUMNS))
    # As wide as the table needs: ids are long, and a pipe must not cut them at 80 columns.
    console = Console()
    wide = console.options.update_width(10_000)
    Console(width=max(console.width, Measurement.get(console, wide, table).maximum)).print(table)


def cell(value: Any) -> str:
    """A value as the table shows it: nothing for None, yes or no for a truth."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def lines(steps: list[Step], relayed: int | None) -> list[dict[str, Any]]:
    """Each step as a line: what caused it named by its position and type when it is a step
    of this trail; `relayed` whether the relay has published it (None: no relay recorded)."""
    by_ref = {step.ref: step for step in steps}
    rows = []
    for step in steps:
        cause = step.cause
        causation = cause.causation_id if cause is not None else ""
        causing = by_ref.get(causation)
        if cause is not None and causation and causation == cause.request_id:
            causation = "request"
        elif causing is not None:
            causation = f"#{causing.position} {causing.type}" if causing.position else causing.type
        published = None
        if relayed is not None and step.type in IN_THE_FEED and step.position is not None:
            published = step.position <= relayed
        rows.append(
            {
                "position": step.position,
                "at": step.at.isoformat(),
                "stream": step.stream,
                "version": step.version,
                "type": step.type,
                "process": cause.process if cause is not None else None,
                "request_id": (cause.request_id or None) if cause is not None else None,
                "correlation_id": (cause.correlation_id or None) if cause is not None else None,
                "caused_by": causation or None,
                "relayed": published,
            }
        )
    return rows


def relay_position(settings: Settings, store: EventStore) -> int | None:
    """How far the feed's relays have published, if any recorded it."""
    if settings.store == "sqlite" and not model_file(settings, Feed.name).is_file():
        return None
    db = open_database(settings, Feed.name, pool_size=1)
    try:
        positions = [status.position for status in relay_statuses(store, db)]
    finally:
        db.close()
    return max(positions, default=None)
