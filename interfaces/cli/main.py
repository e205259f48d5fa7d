"""The `farmacy` command. Entry points stay thin: parse, call one service, report."""

from __future__ import annotations

import secrets
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

from application.errors import StoreUnavailable
from interfaces.cli import feed, http, payments, projections, simulate, trace, world
from interfaces.cli.exits import (
    fail,
    logging_or_exit,
    metrics_port_option,
    payment_settings_or_exit,
    run_until_stopped,
    settings_or_exit,
    signing_settings_or_exit,
)
from interfaces.http.demo import print_demo
from interfaces.http.operations import RUN_ID_HEADER, RUN_ID_VARIABLE
from ops.demo import demo_order, seed_demo, store_holds, venue_stock
from ops.logging import configure_logging
from ops.root import Root, WriteSide
from ops.settings import SETTINGS_HELP
from ops.supervisor import child_env, farmacy_children, simulator_port, supervise
from projections.models import PROJECTIONS

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
        side = Root(settings_or_exit()).write_side()
    except StoreUnavailable as error:
        raise fail(error) from None
    try:
        yield side
    finally:
        side.close()


@app.command("seed-demo")
def seed_demo_command(
    stock: bool = typer.Option(False, "--stock", help="also print every venue's stock"),
) -> None:
    """Register the demo cities, venues, fridges and meals, and stock the fridges."""
    with write_side() as side:
        seeded = seed_demo(side)
        if stock:
            show_venue_stock(side)
    console.print(
        f"demo: {seeded.cities} cities, {seeded.venues} venues, {seeded.fridges} fridges, "
        f"{seeded.meals} meals ({seeded.deliveries} new deliveries)"
    )


@app.command("run")
def run_command(
    host: str = typer.Option("127.0.0.1", help="interface the API listens on"),
    port: int = typer.Option(
        8000, min=1, max=65535, envvar="FARMACY_PORT", help="the API's TCP port"
    ),
    api_processes: int = typer.Option(
        1,
        "--api-processes",
        min=1,
        max=64,
        help="API processes; more than one run behind a load balancer (Caddy) on --port "
        "that sends each fridge's orders (POST /fridges/{id}/orders) to one of them",
    ),
    metrics_port_base: int = typer.Option(
        0,
        "--metrics-port-base",
        min=0,
        max=65000,
        help="serve each process's Prometheus metrics on a port of its own, from this one up "
        "(printed at start; 0: none; the API's are on --port at /metrics)",
    ),
) -> None:
    """The main job: demo data, a worker per read model, fulfilment and the API, until Ctrl-C.

    Every part is a process of its own; one that dies is started again.
    """
    signing_settings_or_exit(host)  # the demo's secret is made here on first run
    payment_settings_or_exit(host)  # and the demo's payment webhook secret
    if not port_free(host, port):
        raise fail(
            f"port {port} on {host} is in use: stop what listens there, or choose another "
            "(make run PORT=8123, or FARMACY_PORT)"
        )
    with write_side() as side:
        seed_demo(side)
        held = store_holds(side)
    console.print(
        f"[bold]Farmacy[/bold] on {side.settings.store}: {held['cities']} cities, "
        f"{held['venues']} venues, {held['fridges']} fridges, {held['meals']} meals"
    )
    run_id = secrets.token_hex(8)  # our API answers /healthz with it; no other server does
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    children = farmacy_children(sorted(PROJECTIONS), host, port, api_processes, metrics_port_base)
    if metrics_port_base:
        console.print(
            "metrics: "
            + ", ".join(
                f"{c.name} :{c.args[c.args.index('--metrics-port') + 1]}"
                for c in children
                if "--metrics-port" in c.args
            )
        )
    env = {**child_env(), RUN_ID_VARIABLE: run_id, "FARMACY_METRICS_HOST": host}
    # fulfilment calls the simulated processor the main job starts (ops/supervisor.py)
    env["FARMACY_PAYMENTS_URL"] = f"http://{host}:{simulator_port(port)}"
    supervisor = threading.Thread(target=supervise, args=(children, stop, env))
    supervisor.start()
    try:
        base_url = f"http://{host}:{port}"
        if not wait_until_healthy(base_url, stop, run_id):
            if not stop.is_set():
                typer.echo(f"farmacy: the API did not start on port {port} of {host}", err=True)
                raise typer.Exit(2)
        else:
            venue_id, fridge_id, meal_id = demo_order()
            print_demo(
                base_url,
                side.settings,
                echo=typer.echo,
                venue_id=venue_id,
                fridge_id=fridge_id,
                meal_id=meal_id,
            )
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stop.set()
        supervisor.join()


def wait_until_healthy(
    base_url: str, stop: threading.Event, run_id: str, seconds: float = 60.0
) -> bool:
    """Poll the API's /healthz until our own API answers it, with `run_id` (or `stop`, or the
    deadline): another server on the port never passes for ours."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200 and answer.headers.get(RUN_ID_HEADER) == run_id:
                    return True
        except OSError:
            pass
        stop.wait(0.2)
    return False


def port_free(host: str, port: int) -> bool:
    """Whether the API could listen on `host`:`port` now (as uvicorn binds: address reuse)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def show_venue_stock(side: WriteSide) -> None:
    """Every demo venue's stock, straight from the write side (no read model needed)."""
    for venue_id, meals in venue_stock(side).items():
        table = Table(title=venue_id, show_header=True)
        table.add_column("meal")
        table.add_column("available", justify="right")
        for meal_id, units in sorted(meals.items()):
            table.add_row(meal_id, str(units))
        console.print(table)


@app.command("fulfil")
def fulfil_command(metrics_port: int = metrics_port_option()) -> None:
    """Run the fulfilment process manager: payments (the processor's HTTP API at
    FARMACY_PAYMENTS_URL), confirmations, releases, expiries, pickup windows."""
    logging_or_exit()
    if not settings_or_exit().payments_url:
        raise fail(
            "FARMACY_PAYMENTS_URL is not set: fulfilment asks a payment processor for every "
            "order (`farmacy payments simulate` runs a simulated one)"
        )
    run_until_stopped(lambda settings, stop: Root(settings).run("fulfilment", stop), metrics_port)


@app.command("snapshots")
def snapshots_command(metrics_port: int = metrics_port_option()) -> None:
    """Snapshot long-lived fridges, so they load fast (never inside an API process)."""
    logging_or_exit()
    run_until_stopped(lambda settings, stop: Root(settings).run("snapshots", stop), metrics_port)


http.register(app)  # api, token
projections.register(app)  # worker, projections status|rebuild
world.register(app)  # promotions import, expiry, fridges poll, kitchen plan
simulate.register(app)  # simulate
payments.register(app)  # payments simulate
feed.register(app)  # relay, feed consume
trace.register(app)  # trace ORDER_ID


def main() -> None:  # pragma: no cover - console script shim
    app()
