"""Worker processes for tests: started as `python -m interfaces.cli.projections worker`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ops.settings import Settings
from projections.database import Database
from projections.projection import Shard, checkpoint, create_bookkeeping

ROOT = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_env()}


def start_worker(
    settings: Settings, name: str, *, shard: str = "0/1", batch_size: int = 50
) -> subprocess.Popen[bytes]:
    """A worker process running read model `name` (one shard of it)."""
    return start_workers(settings, [name], shard=shard, batch_size=batch_size)


def start_workers(
    settings: Settings, names: list[str], *, shard: str = "0/1", batch_size: int = 50
) -> subprocess.Popen[bytes]:
    """One worker process running the named read models (`farmacy worker -p A -p B`)."""
    # Logs go to a file, not a pipe: an unread pipe fills after ~64 KB and blocks the worker.
    # The child keeps its own handle; ours is closed at once so nothing leaks in the tests.
    with tempfile.TemporaryFile() as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "interfaces.cli.projections",
                "worker",
                *(f"--projection={name}" for name in names),
                "--shard",
                shard,
                "--batch-size",
                str(batch_size),
            ],
            cwd=ROOT,
            env=worker_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `condition` (a checkpoint, a role) until true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def position(db: Database, name: str, shard: Shard | None = None) -> int:
    with db.transaction() as tx:
        create_bookkeeping(tx)
    with db.snapshot() as tx:
        return checkpoint(tx, name, 1, shard or Shard()) or 0


def roles(db: Database, name: str, worker: subprocess.Popen[bytes] | None = None) -> list[str]:
    """The roles worker processes report for `name` (only `worker`'s, if given)."""
    with db.transaction() as tx:
        create_bookkeeping(tx)
    with db.snapshot() as tx:
        found = tx.rows("SELECT role, worker FROM projection_workers WHERE name = ?", (name,))
    mine = f":{worker.pid}:" if worker else ""
    return sorted(role for role, identity in found if mine in identity)
