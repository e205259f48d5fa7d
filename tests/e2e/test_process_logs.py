"""Every process logs as FARMACY_LOG_FORMAT says, and every refused option names what is
accepted: the `farmacy` command as an operator runs it, a real process each time."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

FARMACY = [sys.executable, "-m", "interfaces.cli"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "FARMACY_LOG_FORMAT": "json", **extra}


REFUSED = [
    (["fulfil"], {"FARMACY_NO_SHOW": "maybe"}, "FARMACY_NO_SHOW='maybe'", "release or charge"),
    (["worker", "--shard", "two"], {}, "--shard 'two'", "K/N"),
    (["worker", "--projection", "nope"], {}, "'nope'", "choose from"),
    (["fulfil"], {"FARMACY_LOG_FORMAT": "xml"}, "'xml'", "choose one of console, json"),
    (["worker"], {"FARMACY_LOG_FORMAT": "xml"}, "'xml'", "choose one of console, json"),
    (["api"], {"FARMACY_LOG_FORMAT": "xml"}, "'xml'", "choose one of console, json"),
    (["api", "--server", "gunicorn"], {}, "'gunicorn'", "choose one of granian, uvicorn"),
    (["api"], {"FARMACY_SERVER": "hypercorn"}, "'hypercorn'", "choose one of granian, uvicorn"),
]


@pytest.mark.parametrize(("args", "extra", "named", "accepted"), REFUSED)
def test_a_refused_option_names_what_is_accepted(
    tmp_path: Path, args: list[str], extra: dict[str, str], named: str, accepted: str
) -> None:
    result = subprocess.run(
        [*FARMACY, *args],
        capture_output=True,
        text=True,
        env=env(FARMACY_DATA_DIR=str(tmp_path), **extra),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("farmacy: ") and named in line and accepted in line, line


def worker_lines(data_dir: Path, fmt: str, until: str, timeout: float = 60.0) -> list[str]:
    """Start `farmacy worker` with FARMACY_LOG_FORMAT=`fmt`; once a line holds `until`, stop
    it (SIGTERM) and return every line it wrote to stderr."""
    process = subprocess.Popen(
        [*FARMACY, "worker", "--projection", "venue_menu"],
        env=env(FARMACY_DATA_DIR=str(data_dir), FARMACY_LOG_FORMAT=fmt),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stderr, selectors.EVENT_READ)
        try:
            while not any(until in line for line in lines):
                left = deadline - time.monotonic()
                assert left > 0, f"no {until!r} within {timeout} s: {lines}"
                if waiting.select(left):
                    line = process.stderr.readline()
                    assert line, f"the worker ended ({process.poll()}): {lines}"
                    lines.append(line)
        finally:
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=30)
    return [line for line in [*lines, *(rest or "").splitlines()] if line.strip()]


def test_the_worker_writes_json_lines_when_asked_and_console_lines_otherwise(
    tmp_path: Path,
) -> None:
    seeded = subprocess.run(
        [*FARMACY, "seed-demo"], env=env(FARMACY_DATA_DIR=str(tmp_path)), timeout=120, check=False
    )
    assert seeded.returncode == 0
    as_json = worker_lines(tmp_path, "json", "projection_active")
    parsed = [json.loads(line) for line in as_json]  # every line, the libraries' too
    assert any(line["event"] == "projection_active" for line in parsed)
    assert all("level" in line and "timestamp" in line for line in parsed)
    on_console = worker_lines(tmp_path, "console", "projection_active")
    for line in on_console:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_either_server_serves_the_api_and_writes_json_lines(tmp_path: Path, server: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = subprocess.Popen(
        [*FARMACY, "api", "--port", str(port), "--server", server],
        env=env(FARMACY_DATA_DIR=str(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, f"farmacy api --server {server} ended"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{server} did not serve within 60 s"
                time.sleep(0.1)
        assert answer.status_code == 200 and answer.headers["X-Farmacy-Process"].isdigit()
    finally:
        api.send_signal(signal.SIGTERM)
        _, written = api.communicate(timeout=30)
    for line in written.splitlines():  # whatever either server or the app wrote
        json.loads(line)
