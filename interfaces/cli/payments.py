"""`farmacy payments simulate`: the simulated payment processor, as its own HTTP service."""

from __future__ import annotations

import os

import typer

from interfaces.cli.exits import metrics_port_option, payment_settings_or_exit, run_until_stopped
from ops.logging import configure_logging
from ops.root import Root

payments = typer.Typer(help="The payment processor: a simulated one for local runs and tests.")


def default_webhook_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('FARMACY_PORT') or 8000}/payments/webhook"


@payments.command("simulate")
def simulate_command(
    port: int = typer.Option(8100, min=1, max=65535, help="the simulator's TCP port"),
    webhook_url: str = typer.Option(
        "", help="Farmacy's webhook (default: the API on FARMACY_PORT, or 8000, on loopback)"
    ),
    delay: float = typer.Option(0.5, min=0, max=60, help="seconds before it authorises"),
    late: float = typer.Option(5.0, min=0, max=3600, help="seconds a late answer takes"),
    metrics_port: int = metrics_port_option(),
) -> None:
    """Run a simulated card processor: it authorises through the webhook (Standard Webhooks,
    FARMACY_PAYMENT_WEBHOOK_SECRET), keeps a ledger in FARMACY_DATA_DIR that survives its
    restart (GET /ledger), and chooses what to do by the amount's cents (.01 decline, .02
    late, .03 never, .04 twice, .05 out of order, .06 5xx first, .07 time out first)."""
    configure_logging()
    payment_settings_or_exit()  # a missing or weak secret ends it in one line
    url = webhook_url or default_webhook_url()
    run_until_stopped(
        lambda settings, stop: Root(settings).run(
            "payments", stop, port=port, webhook_url=url, delay=delay, late=late
        ),
        metrics_port,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(payments, name="payments")
