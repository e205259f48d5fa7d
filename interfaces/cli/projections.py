"""`farmacy worker` and `farmacy projections status|rebuild`: the read side's commands."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from application.errors import StoreUnavailable
from application.store import EventStore
from interfaces.cli.exits import (
    fail,
    logging_or_exit,
    metrics_or_exit,
    metrics_port_option,
    settings_or_exit,
)
from ops.root import Root, missing_store, open_database, open_databases, open_event_store
from ops.settings import Settings
from projections.feed import Feed, relay_statuses
from projections.models import PROJECTIONS, UnknownProjection, projection_named
from projections.projection import Shard
from projections.rebuild import drop_generation, rebuild
from projections.status import shard_statuses

console = Console()
projections_app = typer.Typer(help="Read models: status and rebuilds.", no_args_is_help=True)


@contextmanager
def _store(settings: Settings) -> Iterator[EventStore]:
    try:
        store = open_event_store(settings)
    except StoreUnavailable as error:
        raise fail(error) from None
    try:
        yield store
    finally:
        store.close()


def _names(names: list[str] | None) -> list[str]:
    try:
        return [projection_named(name).name for name in names or sorted(PROJECTIONS)]
    except UnknownProjection as error:
        raise fail(error) from None


def worker_command(
    projection: list[str] | None = typer.Option(
        None, "--projection", "-p", help="Projection to run (repeat; default: all)."
    ),
    shard: str = typer.Option("0/1", "--shard", help="This worker's shard, K/N."),
    batch_size: int = typer.Option(500, "--batch-size", help="Events per transaction."),
    metrics_port: int = metrics_port_option(),
) -> None:
    """Keep read models up to date: one active worker per projection and shard, others wait.

    SIGTERM (or Ctrl-C) stops at the next batch boundary; a restart resumes from the checkpoint.
    """
    logging_or_exit()  # as every process: FARMACY_LOG_FORMAT, structlog's lines and the rest
    settings = settings_or_exit()
    names = _names(projection)
    try:
        parsed = Shard.parse(shard)
    except ValueError:
        raise fail(f"--shard {shard!r}: need K/N with 0 <= K < N, e.g. 0/1 or 2/8") from None
    metrics_or_exit(metrics_port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    errors = Root(settings).run("worker", stop, names=names, shard=parsed, batch_size=batch_size)
    for failure in errors:
        typer.echo(f"farmacy worker: {failure}", err=True)
    if errors:
        raise typer.Exit(1)


def existing_store_or_exit(settings: Settings) -> None:
    """Read-only commands never create a store: end in one line if there is none where the
    settings point (a mistyped FARMACY_DATA_DIR must not leave an empty store behind)."""
    try:
        missing = missing_store(settings)
    except StoreUnavailable as error:
        raise fail(error) from None
    if missing:
        raise fail(missing)


@projections_app.command("status")
def status_command() -> None:
    """Every projection shard: position, lag (events, seconds), state and last error."""
    settings = settings_or_exit()
    existing_store_or_exit(settings)
    table = Table(show_header=True)
    for column in ("projection", "shard", "gen", "position", "lag events", "lag s", "state"):
        table.add_column(
            column, justify="right" if "lag" in column or column == "position" else "left"
        )
    table.add_column("last error")
    with _store(settings) as store:
        for name in sorted(PROJECTIONS):
            if settings.store == "sqlite" and not model_file(settings, name).is_file():
                table.add_row(name, "-", "-", "-", "-", "-", "not built", "")
                continue
            db = open_database(settings, name, pool_size=1)
            try:
                relays = relay_statuses(store, db) if name == Feed.name else []
                for s in shard_statuses(store, db, name) + relays:
                    state = s.state + (
                        f" (+{s.standbys} standby)" if s.standbys and s.state != "standby" else ""
                    )
                    table.add_row(
                        s.projection,
                        s.shard,
                        str(s.generation),
                        str(s.position),
                        str(s.lag_events),
                        f"{s.lag_seconds:.1f}",
                        state,
                        s.error or "",
                    )
            finally:
                db.close()
        add_trail_rows(settings, store, table)
    # As wide as the table needs: a pipe or a narrow terminal must not cut names at 80 columns
    wide = console.options.update_width(10_000)
    width = max(console.width, Measurement.get(console, wide, table).maximum)
    Console(width=width).print(table)
    console.print("lag events: head - position (on KurrentDB a distance in the log, not a count)")


TRAILS = ("fulfilment",)
"""Processes that follow the store with a checkpoint but keep no read model: shown too."""


def add_trail_rows(settings: Settings, store: EventStore, table: Table) -> None:
    """The fulfilment process manager's position and lag, as a projection's are shown."""
    for name in TRAILS:
        if settings.store == "sqlite" and not model_file(settings, name).is_file():
            table.add_row(name, "-", "-", "-", "-", "-", "not started", "")
            continue
        db = open_databases(settings, [name], pool_size=1)[name]
        try:
            for s in shard_statuses(store, db, name):
                table.add_row(
                    s.projection, s.shard, "-", str(s.position), str(s.lag_events),
                    f"{s.lag_seconds:.1f}", "-", s.error or "",  # trails keep no worker rows
                )  # fmt: skip
        finally:
            db.close()


def model_file(settings: Settings, name: str) -> Path:
    return settings.data_dir / "projections" / f"{name}.sqlite"


@projections_app.command("rebuild")
def rebuild_command(
    name: str = typer.Argument(..., help=f"One of: {', '.join(sorted(PROJECTIONS))}."),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Build the next version while the current keeps serving."
    ),
    drop_old: int | None = typer.Option(
        None, "--drop-generation", help="Only drop this old generation's tables, then exit."
    ),
) -> None:
    """Replay a read model from zero into new tables, then switch readers to them."""
    settings = settings_or_exit()
    (name,) = _names([name])
    db = open_database(settings, name, pool_size=2)
    try:
        if drop_old is not None:
            drop_generation(db, name, drop_old)
            console.print(f"{name}: generation {drop_old} dropped")
            return
        with (
            _store(settings) as store,
            Progress(
                TextColumn(f"[bold]{name}[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8} ev/s"),
                TimeRemainingColumn(),
                console=console,
            ) as bar,
        ):
            task = bar.add_task(name, total=None, rate="")
            started = time.monotonic()

            def progress(done: int, total: int) -> None:
                # our own rate: rich's `speed` needs samples a rebuild's few batches do not give
                elapsed = time.monotonic() - started
                rate = f"{done / elapsed:,.0f}" if elapsed > 0 and done else "0"
                bar.update(task, completed=done, total=total, rate=rate)

            result = rebuild(store, db, name, side_by_side=side_by_side, progress=progress)
    finally:
        db.close()
    console.print(
        f"{name}: generation {result.new_generation} serves from position {result.position} "
        f"({result.events} events replayed)"
    )
    for table, (old, new) in result.row_counts.items():
        mark = "=" if old == new else "≠ (workers moved on, or the model changed)"
        console.print(f"  {table}: {old} rows before, {new} after {mark}")
    if side_by_side:
        console.print(
            f"  old generation {result.old_generation} kept: "
            f"farmacy projections rebuild {name} --drop-generation {result.old_generation}"
        )


def register(app: typer.Typer) -> None:
    """Add `worker` and the `projections` group to the `farmacy` command."""
    app.command("worker")(worker_command)
    app.add_typer(projections_app, name="projections")


if __name__ == "__main__":  # tests run workers as `python -m interfaces.cli.projections worker`
    standalone = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
    register(standalone)
    standalone()
