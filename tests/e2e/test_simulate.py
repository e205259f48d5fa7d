"""`farmacy simulate` against the main job (`farmacy run`, SQLite, a temp data dir): a short
day of traffic, split over two simulator processes, whose invariants hold, and the same check
failing, naming the counterexample, once a read model is edited behind the API's back."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_main_job import free_port, until

pytestmark = pytest.mark.slow

EXPECTED_ERRORS = {"503"}
"""The only errors a healthy run may see: the API answering busy (after bounded retries)."""


@dataclass
class MainJob:
    base: str
    env: dict[str, str]
    data_dir: Path

    def farmacy(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interfaces.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def token(self, role: str) -> str:
        return self.farmacy("token", role).stdout.strip()


@dataclass
class Run:
    job: MainJob
    result: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    ledger: Path


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MainJob]:
    data_dir = tmp_path_factory.mktemp("simulated")
    port = free_port()
    env = {**os.environ, "FARMACY_DATA_DIR": str(data_dir), "FARMACY_LOG_FORMAT": "json"}
    env.pop("FARMACY_SECRET", None)  # the demo makes its own; the simulator signs with it
    env.pop("FARMACY_STORE", None)
    job = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert job.stdout is not None
        assert until(lambda: job.stdout and job.stdout.readline().startswith("Farmacy API"))
        yield MainJob(f"http://127.0.0.1:{port}", env, data_dir)
    finally:
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=60)


@pytest.fixture(scope="module")
def run(main_job: MainJob, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("run")
    result = main_job.farmacy(
        "simulate",
        "--against",
        main_job.base,
        "--seed",
        "7",
        "--duration",
        "60",  # the minute of simulated traffic (the suite runs on two workers)
        "--rate",
        "40",
        "--cities",
        "2",
        "--fridges",
        "5",
        "--processes",
        "2",  # as the benchmarks run it: a world per process, their figures pooled
        "--report",
        str(out / "report.json"),
        "--ledger",
        str(out / "ledger.json"),
    )
    report = json.loads((out / "report.json").read_text()) if result.returncode < 2 else {}
    return Run(main_job, result, report, out / "ledger.json")


def test_a_simulated_day_keeps_every_invariant(run: Run) -> None:
    assert run.result.returncode == 0, run.result.stderr
    report = run.report
    assert report["invariants"]["broken"] == []
    assert report["orders"]["placed"] > 0
    assert sum(report["orders_by_final_status"].values()) >= report["orders"]["placed"]
    assert {error.rsplit(" ", 1)[1] for error in report["errors"]} <= EXPECTED_ERRORS
    kinds = report["requests_by_kind"]
    for kind in ("venue_menu", "city_menu", "stock", "place_order", "count", "delivery"):
        assert kinds[kind] > 0, kind
    # the profile's mix: six venue menu reads for every session that got as far as a stock
    # read (a session cut off at closing may have read some of its six)
    cut_off = report["orders"].get("sessions_cut_off", 0)
    assert 6 * kinds["stock"] <= kinds["venue_menu"] <= 6 * (kinds["stock"] + cut_off)
    assert report["routes"]["place_order"]["p99_ms"] is not None
    # operators reprice through PUT /meals/{id}/price, and every order paid a price in force
    assert report["orders"]["repriced"] > 0 and "reprice_refused" not in report["orders"]
    assert not [note for note in report["invariants"]["unchecked"] if "price" in note]
    lines = [json.loads(line) for line in run.result.stdout.splitlines()]
    assert lines[-1]["event"] == "summary" and lines[-1]["invariants"]["broken"] == []
    assert any(line["event"] == "progress" for line in lines)


def test_a_read_model_edited_behind_the_apis_back_fails_the_check_naming_it(run: Run) -> None:
    assert run.result.returncode == 0, run.result.stderr
    job = run.job
    again = job.farmacy("simulate", "--against", job.base, "--check-only", str(run.ledger))
    assert again.returncode == 0, again.stderr  # untouched, the world still checks out

    ledger = json.loads(run.ledger.read_text())
    fridge_id = sorted(ledger["parts"][1]["world"]["fridges"])[0]
    stock = get(f"{job.base}/fridges/{fridge_id}/stock", job.token("operator"))
    meal = next(m for m in stock["meals"] if m["fresh"] > m["held"])
    database = sqlite3.connect(job.data_dir / "projections" / "fridge_stock.sqlite")
    with database:
        (generation,) = database.execute(
            "SELECT active FROM projection_generations WHERE name = 'fridge_stock'"
        ).fetchone()
        database.execute(
            f"INSERT INTO fridge_stock_g{generation}_holds VALUES (?, ?, ?, 1)",
            (fridge_id, "00000000-0000-0000-0000-000000000000", meal["meal_id"]),
        )
    database.close()
    # The API answers a fridge's stock from memory until an event changes that fridge
    # (projections/versions.py): a count of exactly what is on hand changes nothing else.
    taken_at = datetime.now(UTC).isoformat()
    counts = {m["meal_id"]: m["on_hand"] for m in stock["meals"]}
    body = {"report_id": "edited-behind-its-back", "taken_at": taken_at, "counts": counts}
    post(f"{job.base}/fridges/{fridge_id}/counts", job.token("operator"), body)
    deadline = time.monotonic() + 10  # until the stock model has taken the count in

    def held() -> int:
        again = get(f"{job.base}/fridges/{fridge_id}/stock", job.token("operator"))
        return next(m["held"] for m in again["meals"] if m["meal_id"] == meal["meal_id"])

    while held() != meal["held"] + 1:
        assert time.monotonic() < deadline, "the API never read the edited stock"
        time.sleep(0.05)

    broken = job.farmacy("simulate", "--against", job.base, "--check-only", str(run.ledger))
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines()[-1] == (
        f"farmacy: invariant broken: held units: fridge {fridge_id} meal {meal['meal_id']} "
        f"holds {meal['held'] + 1}, its open orders {meal['held']}"
    )


def post(url: str, token: str, body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())
