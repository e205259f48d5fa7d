"""The main job's process supervisor: the API and every worker as processes of their own.

Projection workers and fulfilment never run inside API processes. A child that dies is
started again (after a short pause, so a crash loop does not spin); SIGTERM or Ctrl-C stops
every child with SIGTERM, which workers honour at a batch boundary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import structlog

from ops.root import PROCESSES

log = structlog.get_logger(__name__)

RESTART_PAUSE_SECONDS = 2.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "interfaces.cli", *self.args]
        self.process = subprocess.Popen(command, env=env)  # noqa: S603 - our own CLI
        self.started_at = time.monotonic()
        log.info("child_started", child=self.name, pid=self.process.pid)


def simulator_port(api_port: int) -> int:
    """Where the main job's simulated payment processor listens: beside its API's port."""
    return api_port + 100 if api_port + 100 <= 65535 else api_port - 100


def farmacy_children(projections: list[str], host: str, port: int) -> list[Child]:
    """One of every long-running process of the root's table (a worker per read model in
    `projections`), then the API on `host`:`port`."""
    children: list[Child] = []
    for name, process in PROCESSES.items():
        if name == "worker":
            children += [
                Child(f"worker:{model}", [*process.command, "--projection", model])
                for model in projections
            ]
        elif name == "payments":  # the simulated processor answers through our API's webhook
            webhook = f"http://{host}:{port}/payments/webhook"
            options = ["--port", str(simulator_port(port)), "--webhook-url", webhook]
            children.append(Child(name, [*process.command, *options]))
        else:
            children.append(Child(name, list(process.command)))
    children.append(Child("api", ["api", "--host", host, "--port", str(port), "--workers", "1"]))
    return children


def supervise(children: list[Child], stop: threading.Event, env: dict[str, str]) -> None:
    """Keep every child running until `stop` is set, then stop them all."""
    for child in children:
        child.start(env)
    try:
        while not stop.is_set():
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                log.warning("child_exited", child=child.name, exit_code=code)
                if time.monotonic() - child.started_at < RESTART_PAUSE_SECONDS:
                    stop.wait(RESTART_PAUSE_SECONDS)
                child.restarts += 1
                child.start(env)
            stop.wait(0.5)
    finally:
        stop_all(children)


def stop_all(children: list[Child]) -> None:
    running = [c.process for c in children if c.process and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("FARMACY_LOG_FORMAT", "json")
    return env
