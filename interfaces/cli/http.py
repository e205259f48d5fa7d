"""`farmacy api` serves the HTTP API; `farmacy token` prints a bearer token for local use."""

from __future__ import annotations

import os
from datetime import timedelta

import typer

from application.errors import StoreUnavailable
from interfaces.cli.exits import (
    fail,
    logging_or_exit,
    payment_settings_or_exit,
    signing_settings_or_exit,
)
from interfaces.http.auth import Role
from ops.root import Root
from ops.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("api")(api_command)
    app.command("token")(token_command)


SERVERS = ("granian", "uvicorn")
"""The ASGI servers `farmacy api` can run; FARMACY_SERVER or --server chooses."""
DEFAULT_SERVER = "uvicorn"


def api_command(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="server processes, each with its own write side"),
    server: str = typer.Option(
        DEFAULT_SERVER,
        "--server",
        envvar="FARMACY_SERVER",
        help=f"the ASGI server: {' or '.join(SERVERS)}",
    ),
) -> None:
    """Serve the HTTP API (uvicorn with uvloop and httptools, or granian; N processes)."""
    if not isinstance(server, str):  # called as a function (the benchmarks): the environment
        server = os.environ.get("FARMACY_SERVER", DEFAULT_SERVER)
    if server not in SERVERS:
        raise fail(f"--server {server!r} (FARMACY_SERVER): choose one of {', '.join(SERVERS)}")
    logging_or_exit()  # the servers' own lines too: neither configures logging of its own
    signing_settings_or_exit(host)  # fail in one line before any server process starts
    settings = payment_settings_or_exit(host)  # FARMACY_PAYMENT_WEBHOOK_SECRET likewise
    store_or_exit(settings)  # and the store: a server's app factory failing is a traceback
    if server == "granian":
        serve_with_granian(host, port, workers)
        return
    import uvicorn  # imported here: the other commands do not need a server

    uvicorn.run(
        "interfaces.http.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,  # the app logs one structured line per request itself
        log_level="warning",
        log_config=None,
    )


def store_or_exit(settings: Settings) -> None:
    """End in one line if the event store does not open (a read-only data directory, a
    server that does not answer), before any server process starts."""
    try:
        with Root(settings).event_store():
            pass
    except StoreUnavailable as error:
        raise fail(error) from None


def serve_with_granian(host: str, port: int, workers: int) -> None:
    """Granian (Rust HTTP, asyncio on uvloop): a supervising process and `workers` server
    processes, each calling the app factory."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    Server(
        "interfaces.http.app:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        log_enabled=False,  # the app logs one structured line per request itself
        respawn_failed_workers=True,
    ).serve()


def token_command(
    role: Role = typer.Argument(
        ..., help="customer, kitchen, fridge, operator, payment or subsystem"
    ),
    subject: str = typer.Option(
        None, "--subject", help="customer id or fridge id (default: the role's name)"
    ),
    hours: float = typer.Option(24.0, help="how long the token stays valid"),
) -> None:
    """Print a bearer token signed with FARMACY_SECRET."""
    from interfaces.http.auth import issue_token

    settings = signing_settings_or_exit()
    typer.echo(issue_token(settings.secret, role, subject or role.value, timedelta(hours=hours)))
