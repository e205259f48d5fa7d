"""The `farmacy` command as an operator runs it: a real process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FARMACY = [sys.executable, "-m", "interfaces.cli"]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "FARMACY_LOG_FORMAT": "json", **env}
    return subprocess.run(
        [*FARMACY, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


def test_help_lists_the_configuration() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    for setting in ("FARMACY_STORE", "FARMACY_DATA_DIR", "FARMACY_POSTGRES_DSN", "KURRENTDB_URI"):
        assert setting in result.stdout


def test_seeding_twice_on_sqlite_adds_nothing_the_second_time(tmp_path: Path) -> None:
    first = run(["seed-demo"], FARMACY_DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "9 fridges" in first.stdout and "(9 new deliveries)" in first.stdout
    again = run(["seed-demo"], FARMACY_DATA_DIR=str(tmp_path))
    assert again.returncode == 0 and "(0 new deliveries)" in again.stdout
    assert (tmp_path / "events.sqlite").exists()


def test_an_unreachable_store_is_one_line_naming_the_setting() -> None:
    result = run(
        ["seed-demo"],
        FARMACY_STORE="postgres",
        FARMACY_POSTGRES_DSN="postgresql://postgres:hunter2@127.0.0.1:1/nowhere",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "FARMACY_POSTGRES_DSN" in lines[0] and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_a_wrong_store_name_is_one_line() -> None:
    result = run(["seed-demo"], FARMACY_STORE="mongo")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "farmacy: FARMACY_STORE='mongo': choose one of sqlite, postgres, kurrentdb"
    )
