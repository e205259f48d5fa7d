"""`farmacy api` serves the HTTP API; `farmacy token` prints a bearer token for local use."""

from __future__ import annotations

from datetime import timedelta

import typer

from interfaces.cli.exits import logging_or_exit, signing_settings_or_exit
from interfaces.http.auth import Role


def register(app: typer.Typer) -> None:
    app.command("api")(api_command)
    app.command("token")(token_command)


def api_command(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="server processes, each with its own write side"),
) -> None:
    """Serve the HTTP API (uvicorn with uvloop and httptools; N worker processes)."""
    import uvicorn  # imported here: the other commands do not need a server

    logging_or_exit()  # uvicorn's own lines too: it configures none (`log_config=None`)
    signing_settings_or_exit(host)  # fail in one line before any server process starts
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


def token_command(
    role: Role = typer.Argument(..., help="customer, kitchen, fridge, operator or payment"),
    subject: str = typer.Option(
        None, "--subject", help="customer id or fridge id (default: the role's name)"
    ),
    hours: float = typer.Option(24.0, help="how long the token stays valid"),
) -> None:
    """Print a bearer token signed with FARMACY_SECRET."""
    from interfaces.http.auth import issue_token

    settings = signing_settings_or_exit()
    typer.echo(issue_token(settings.secret, role, subject or role.value, timedelta(hours=hours)))
