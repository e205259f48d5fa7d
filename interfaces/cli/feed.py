"""`farmacy relay` and `farmacy feed consume`: the feed on NATS JetStream (docs/feed.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from interfaces.cli.exits import fail, metrics_port_option, run_until_stopped, settings_or_exit
from interfaces.feed.consumer import LEASE_SECONDS, JsonLines, Partition, run_consumer
from ops.logging import configure_logging
from ops.root import Root

feed_app = typer.Typer(help="The feed for other subsystems, on NATS JetStream.")


def register(app: typer.Typer) -> None:
    app.command("relay")(relay_command)
    app.add_typer(feed_app, name="feed")


def relay_command(
    replicas: int = typer.Option(
        1, min=1, max=5, help="replicas of the stream and bucket it creates (3 on a cluster)"
    ),
    duplicate_window: float = typer.Option(
        120.0, min=1.0, max=86_400.0, help="seconds the stream it creates remembers message ids"
    ),
    metrics_port: int = metrics_port_option(),
) -> None:
    """Publish every integration event into JetStream (FARMACY_NATS_URL), once each."""
    configure_logging()
    run_until_stopped(
        lambda settings, stop: Root(settings).run(
            "relay", stop, replicas=replicas, duplicate_window=duplicate_window
        ),
        metrics_port,
    )


@feed_app.command("consume")
def consume_command(
    partition: str = typer.Option(..., help="K/N: partitions p with p % N == K"),
    out: Path | None = typer.Option(None, help="append events here (default: stdout)"),
    lease_seconds: float = typer.Option(
        LEASE_SECONDS, min=0.5, max=600.0, help="how long a dead consumer holds its partition"
    ),
    replicas: int = typer.Option(
        1, min=1, max=5, help="replicas of the lease and progress buckets (3 on a cluster)"
    ),
) -> None:
    """A reference consumer: one partition in order; stands by while another holds it."""
    configure_logging()
    settings = settings_or_exit()
    if not settings.nats_url:
        raise fail("FARMACY_NATS_URL is not set: the feed is HTTP only (GET /feed)")
    try:
        chosen = Partition.parse(partition)
    except ValueError as error:
        raise fail(str(error)) from None
    url = settings.nats_url
    run_until_stopped(
        lambda _, stop: run_consumer(url, chosen, JsonLines(out), stop, lease_seconds, replicas)
    )
