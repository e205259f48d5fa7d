"""The embedded store's data directory fills up under an API process and a worker.

The directory is a small tmpfs mounted for the test (root only: CI and the development machines
run as root; elsewhere the test is skipped with that reason). A filler file takes all but a few
pages, so the next appends find no room.

What a user relies on: an order that cannot be written is answered 503 with Retry-After and a
reason (never a 500, never an acknowledgement of what was not kept); reads go on; nothing
acknowledged is lost and no file is corrupted; once space returns the same request, with the
same key, places the order, and the worker carries on by itself.

A directory turned read-only under running processes is not tested here: the kernel refuses
to remount a tmpfs read-only while files on it are open for writing, which they are.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interfaces.http.auth import Role, issue_token
from ops.root import build_write_side
from ops.settings import Settings
from tests.e2e.test_http_processes import free_port, start_api, wait_listening
from tests.integration.projection_processes import start_worker, wait_until
from tests.integration.world import World, make_world

MOUNT_SIZE = "4m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={MOUNT_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """A file taking all of `directory`'s free space but `leave` bytes."""
    free = shutil.disk_usage(directory).free
    filler = directory / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(free - leave, 0))
    return filler


def order(http: httpx.Client, world: World, key: str) -> httpx.Response:
    body = {"fridge_id": world.fridge_id, "lines": [{"meal_id": world.soup, "quantity": 1}]}
    return http.post("/orders", json=body, headers={"Idempotency-Key": key})


def assert_refused_for_now(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers.get("Retry-After")
    assert answer.json()["detail"]


def integrity(directory: Path) -> dict[str, str]:
    found = {}
    for path in sorted(directory.glob("*.db")) + sorted(directory.glob("*.sqlite*")):
        if path.suffix in (".db", ".sqlite"):
            with sqlite3.connect(path) as conn:
                found[path.name] = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return found


@pytest.mark.slow
def test_a_full_data_directory_refuses_clearly_and_recovers(
    small_disk: Path,
) -> None:
    settings = Settings(store="sqlite", data_dir=small_disk)
    side = build_write_side(settings)
    world = make_world(side, soup_units=50, salad_units=0)
    side.close()
    port = free_port()
    api = start_api(settings, port)
    worker = start_worker(settings, "orders")
    customer = issue_token(settings.secret, Role.CUSTOMER, "c1")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_listening(url, api)
        with httpx.Client(
            base_url=url, timeout=10.0, headers={"Authorization": f"Bearer {customer}"}
        ) as http:
            first = order(http, world, "before")
            assert first.status_code == 201, first.text

            def first_seen() -> bool:
                seen = http.get(
                    f"/orders/{first.json()['order_id']}",
                    params={"min_position": first.json()["position"]},
                )
                # 503 "not built" until the worker just started has created its tables
                assert seen.status_code in (200, 503), seen.text
                return seen.status_code == 200

            wait_until(first_seen, 30, "the orders model to have the first order")

            filler = fill(small_disk, leave=0)
            full = [order(http, world, f"full-{n}") for n in range(5)]
            for answer in full:
                assert_refused_for_now(answer)
            assert http.get(f"/orders/{first.json()['order_id']}").status_code == 200

            filler.unlink()
            again = [order(http, world, f"full-{n}") for n in range(5)]
            assert [a.status_code for a in again] == [201] * 5, [a.text for a in again]

            placed = {first.json()["order_id"]} | {a.json()["order_id"] for a in again}
            newest = max(a.json()["position"] for a in again)
            for order_id in placed:  # the worker carried on by itself once space returned
                shown = http.get(f"/orders/{order_id}", params={"min_position": newest})
                assert shown.status_code == 200, shown.text
    finally:
        for process in (api, worker):
            process.terminate()
            process.wait(timeout=10)
    checks = integrity(small_disk)
    assert checks and set(checks.values()) == {"ok"}, checks
