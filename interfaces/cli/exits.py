"""How every `farmacy` command fails: one line on stderr naming what to fix, exit code 2."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import typer

from application.errors import StoreUnavailable
from ops import metrics
from ops.logging import UnknownLogFormat, UnknownLogLevel, configure_logging
from ops.settings import Settings, SettingsError


def fail(error: Exception | str) -> typer.Exit:
    """Print `farmacy: <error>` on stderr; raise the returned Exit."""
    typer.echo(f"farmacy: {error}", err=True)
    return typer.Exit(2)


def logging_or_exit(level: str | None = None) -> None:
    """Log as FARMACY_LOG_FORMAT and FARMACY_LOG_LEVEL say (every process alike), or end
    naming the formats or levels."""
    try:
        configure_logging(level)
    except (UnknownLogFormat, UnknownLogLevel) as error:
        raise fail(error) from None


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise fail(error) from None


def signing_settings_or_exit(host: str = "127.0.0.1") -> Settings:
    """Settings for a command that signs or checks tokens for an API on `host`: a missing,
    published or short FARMACY_SECRET where one is required ends it in one line."""
    try:
        return settings_or_exit().for_signing(host)
    except SettingsError as error:
        raise fail(error) from None


def payment_settings_or_exit(host: str = "127.0.0.1") -> Settings:
    """Settings for a process that checks (or signs) payment webhooks on `host`: a missing or
    weak FARMACY_PAYMENT_WEBHOOK_SECRET where one is required ends it in one line."""
    try:
        return settings_or_exit().for_payments(host)
    except SettingsError as error:
        raise fail(error) from None


def metrics_port_option() -> Any:
    """`--metrics-port`, the same on every long-running command."""
    return typer.Option(
        0,
        "--metrics-port",
        min=0,
        max=65535,
        envvar=metrics.METRICS_PORT,
        help="serve Prometheus metrics on this TCP port at /metrics, on every interface or "
        "FARMACY_METRICS_HOST's (0: none)",
    )


def metrics_or_exit(port: int) -> None:
    """Serve this process's metrics on `port` if it is not 0, or end naming the port."""
    if not port:
        return
    try:
        metrics.serve(port)
    except OSError as error:
        raise fail(f"metrics port {port}: {error.strerror or error}") from None


def run_until_stopped(
    work: Callable[[Settings, threading.Event], object], metrics_port: int = 0
) -> None:
    """Run a long-lived worker until SIGTERM or Ctrl-C; store errors end it in one line.
    Its metrics are served on `metrics_port` (0: none) while it runs."""
    settings = settings_or_exit()
    metrics_or_exit(metrics_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        work(settings, stop)
    except KeyboardInterrupt:
        stop.set()
    except StoreUnavailable as error:
        raise fail(error) from None
