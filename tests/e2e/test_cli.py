"""The `farmacy` command as an operator runs it: a real process, real files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from projections.models import PROJECTIONS

FARMACY = [sys.executable, "-m", "interfaces.cli"]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "FARMACY_LOG_FORMAT": "json", **env}
    return subprocess.run(
        [*FARMACY, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


def test_help_lists_the_configuration() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    settings = ("FARMACY_STORE", "FARMACY_DATA_DIR", "FARMACY_POSTGRES_DSN", "KURRENTDB_URI")
    for setting in (*settings, "FARMACY_SECRET", "FARMACY_PORT"):
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


def test_status_with_a_mistyped_data_dir_creates_no_store(tmp_path: Path) -> None:
    typo = tmp_path / "vra"
    result = run(["projections", "status"], FARMACY_DATA_DIR=str(typo))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FARMACY_DATA_DIR" in lines[0], result.stderr
    assert not typo.exists()


def test_status_names_every_projection_whole_and_rebuild_shows_a_rate(tmp_path: Path) -> None:
    assert run(["seed-demo"], FARMACY_DATA_DIR=str(tmp_path)).returncode == 0
    rebuilt = run(["projections", "rebuild", "venue_menu"], FARMACY_DATA_DIR=str(tmp_path))
    assert rebuilt.returncode == 0, rebuilt.stderr
    rate = re.search(r"([\d,]+) ev/s", rebuilt.stdout)
    assert rate and int(rate.group(1).replace(",", "")) > 0, rebuilt.stdout
    # not a terminal: rich would cut the table at 80 columns
    status = run(["projections", "status"], FARMACY_DATA_DIR=str(tmp_path), COLUMNS="")
    assert status.returncode == 0, status.stderr
    for name in PROJECTIONS:
        assert re.search(rf"\b{name}\b", status.stdout), (name, status.stdout)
    assert "last error" in status.stdout


SECRET = "0123456789abcdef0123456789abcdef"  # 32 bytes


def farmacy(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`farmacy ARGS` with only these FARMACY_SECRET and store settings."""
    environ = {k: v for k, v in os.environ.items() if k != "FARMACY_SECRET"}
    return subprocess.run(
        [*FARMACY, *args],
        capture_output=True,
        text=True,
        env={**environ, "FARMACY_LOG_FORMAT": "json", **env},
        timeout=120,
        check=False,
    )


POSTGRES = {"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://db.invalid/x"}


def one_line_naming_the_secret(result: subprocess.CompletedProcess[str], why: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FARMACY_SECRET" in lines[0] and why in lines[0], lines


def test_a_server_store_without_a_secret_stops_every_command_that_signs() -> None:
    for command in (["token", "operator"], ["api"], ["run"]):
        one_line_naming_the_secret(farmacy(command, **POSTGRES), "is not set")


@pytest.mark.parametrize(
    ("secret", "why"),
    [("farmacy-local-development-secret", "is a published default"), (SECRET[:-1], "31 bytes")],
)
def test_a_server_store_refuses_a_published_or_short_secret(secret: str, why: str) -> None:
    one_line_naming_the_secret(
        farmacy(["token", "operator"], **POSTGRES, FARMACY_SECRET=secret), why
    )
    signed = farmacy(["token", "operator"], **POSTGRES, FARMACY_SECRET=SECRET)
    assert signed.returncode == 0 and signed.stdout.count(".") == 2, signed.stderr


def test_an_api_beyond_loopback_needs_a_secret_even_on_sqlite(tmp_path: Path) -> None:
    result = farmacy(["api", "--host", "0.0.0.0", "--port", "1"], FARMACY_DATA_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "farmacy: FARMACY_SECRET is not set: with an API on 0.0.0.0 it signs every token; "
        "set at least 32 random bytes (e.g. `openssl rand -hex 32`)"
    )


def test_the_demo_secret_is_made_per_data_directory(tmp_path: Path) -> None:
    def token(data_dir: Path) -> str:
        made = farmacy(["token", "customer"], FARMACY_DATA_DIR=str(data_dir))
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    first, again, other = token(tmp_path / "a"), token(tmp_path / "a"), token(tmp_path / "b")
    secret = (tmp_path / "a" / "secret").read_text().strip()
    assert len(secret.encode()) >= 32
    assert (tmp_path / "a" / "secret").stat().st_mode & 0o777 == 0o600
    assert secret != (tmp_path / "b" / "secret").read_text().strip()
    claims = [jwt.decode(t, secret, algorithms=["HS256"]) for t in (first, again)]
    assert {c["extras"]["role"] for c in claims} == {"customer"}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(other, secret, algorithms=["HS256"])
