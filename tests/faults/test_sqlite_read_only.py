"""The embedded store's data directory is read-only when a process starts on it.

The directory is a read-only bind mount of a store's real one (root only: CI and the
development machines run as root; elsewhere the test is skipped with that reason).

What a user relies on: the API (with its secrets set, or the demo's kept in the directory) and
a worker each end at once with one line that says the
directory is read-only (no traceback), exit non-zero, and leave the store as it was.

Not tested, because it cannot happen this way: a directory turning read-only under a running
process. The kernel refuses to remount a mount read-only while files on it are open for
writing, and SQLite opens its files for writing even to read (its journal and shared memory),
which is also why a process started on a read-only copy cannot serve reads either.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.demo import seed_demo
from ops.root import build_write_side
from ops.settings import Settings
from tests.e2e.test_http_processes import free_port

FARMACY = [sys.executable, "-m", "interfaces.cli"]


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the store's directory, a read-only bind mount of it)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    data, read_only = tmp_path / "data", tmp_path / "read-only"
    data.mkdir()
    read_only.mkdir()
    side = build_write_side(Settings(store="sqlite", data_dir=data))  # type: ignore[arg-type]
    seed_demo(side)
    side.close()
    bound = subprocess.run(["mount", "--bind", str(data), str(read_only)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        done = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(read_only)], capture_output=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"cannot make a bind mount read-only: {done.stderr.decode().strip()}")
        yield data, read_only
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)


def position(data: Path) -> int:
    side = build_write_side(Settings(store="sqlite", data_dir=data))  # type: ignore[arg-type]
    try:
        return side.store.position()
    finally:
        side.close()


def test_processes_started_on_a_read_only_data_directory_refuse_in_one_line(
    read_only_copy: tuple[Path, Path],
) -> None:
    data, read_only = read_only_copy
    before = position(data)
    env = {**os.environ, "FARMACY_DATA_DIR": str(read_only), "FARMACY_LOG_FORMAT": "json"}
    secrets = {
        "FARMACY_SECRET": "s" * 40,
        "FARMACY_PAYMENT_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"w" * 32).decode(),
    }
    commands = {
        "api, the demo's secrets": (["api", "--port", str(free_port())], {}),
        "api": (["api", "--port", str(free_port())], secrets),
        "worker": (["worker", "--projection", "orders"], {}),
    }
    started = {
        name: subprocess.Popen(
            [*FARMACY, *args],
            env={**env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, extra) in commands.items()
    }
    for name, process in started.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0, name
        assert "Traceback" not in stderr, f"{name}: {stderr}"
        lines = [line for line in stderr.splitlines() if line.startswith("farmacy")]
        assert len(lines) == 1, f"{name}: {stderr}"
        assert str(read_only) in lines[0], lines[0]
        assert "read-only" in lines[0].lower(), lines[0]
    assert position(data) == before  # nothing written, nothing lost
