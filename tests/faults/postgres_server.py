"""A PostgreSQL server of a test's own, started from the machine's binaries on a free port, so a
test may stop and start it under traffic without touching the shared server at :5432."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.e2e.test_http_processes import free_port


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@dataclass
class ThrowawayPostgres:
    bin: Path
    data: Path
    port: int
    user: str | None  # run the server as this user (PostgreSQL refuses to run as root)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run(
            [*prefix, *argv], check=True, capture_output=True, timeout=60, cwd=self.data.parent
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent}"
        # -l: the server's output goes to a file; a pipe it inherited would never close
        log = str(self.data.parent / "server.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "start"
        )

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, the next start replays the WAL."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A fresh server (initdb, trust auth) on a free port, stopped and deleted afterwards."""
    bin_dir = binaries()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    user = "postgres" if os.geteuid() == 0 else None
    top = Path(tempfile.mkdtemp(prefix="farmacy-pg-"))
    data = top / "data"
    if user:
        shutil.chown(top, user)
    server = ThrowawayPostgres(bin_dir, data, free_port(), user)
    try:
        server._run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
        server.start()
        yield server
    finally:
        if server.answers():
            server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(top, ignore_errors=True)
