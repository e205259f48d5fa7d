"""The main job's process supervisor: the API and every worker as processes of their own.

Projection workers and fulfilment never run inside API processes. With more than one API
process, they listen on loopback ports of their own behind the load balancer
(ops/balancer.py, Caddy), which listens where the one API process would have. A child that dies is
started again (after a short pause, so a crash loop does not spin); SIGTERM or Ctrl-C stops
every child with SIGTERM, which workers honour at a batch boundary.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import structlog

from ops.balancer import balancer_command
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
    program: list[str] | None = None
    """A program other than the `farmacy` command (the balancer), run with `args`."""
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, env: dict[str, str]) -> None:
        command = [*(self.program or [sys.executable, "-m", "interfaces.cli"]), *self.args]
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, or Caddy
            command, env={**env, **self.extra_env}
        )
        self.started_at = time.monotonic()
        log.info("child_started", child=self.name, pid=self.process.pid)


def simulator_port(api_port: int) -> int:
    """Where the main job's simulated payment processor listens: beside its API's port."""
    return api_port + 100 if api_port + 100 <= 65535 else api_port - 100


def farmacy_children(
    projections: list[str],
    host: str,
    port: int,
    api_processes: int = 1,
    metrics_port_base: int = 0,
) -> list[Child]:
    """One of every long-running process of the root's table (a worker per read model in
    `projections`), then the API on `host`:`port`: one process, or `api_processes` behind
    the load balancer. With `metrics_port_base`, the processes before the API serve their
    metrics on that port and the ones after it, in order (the API's are on its own port)."""
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
    if metrics_port_base:
        for n, child in enumerate(children):
            child.args += ["--metrics-port", str(metrics_port_base + n)]
    if api_processes == 1:
        children.append(api_child("api", host, port))
        return children
    ports = free_ports(api_processes)
    children += [api_child(f"api:{n}", "127.0.0.1", p) for n, p in enumerate(ports, 1)]
    command, env = balancer_command([f"127.0.0.1:{p}" for p in ports], port, host)
    children.append(Child("balancer", command[1:], program=command[:1], extra_env=env))
    return children


def api_child(name: str, host: str, port: int) -> Child:
    return Child(name, ["api", "--host", host, "--port", str(port), "--workers", "1"])


def free_ports(count: int) -> list[int]:
    """`count` loopback ports free now, for the API processes behind the balancer."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


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
    # one port cannot serve every child: they get ports of their own, or none
    env.pop("FARMACY_METRICS_PORT", None)
    return env
