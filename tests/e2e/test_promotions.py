"""Operators import promotions as they would: over HTTP, and with `farmacy promotions import`."""

from __future__ import annotations

from pathlib import Path

from interfaces.http.auth import Role
from tests.e2e.http_client import Api, api, is_problem
from tests.e2e.test_cli import run
from tests.sheets import HEADER, WRITERS

__all__ = ["api"]


def sheet(api: Api, percent: object) -> list[list[object]]:
    city = f"city:{api.world.city_id}"
    return [HEADER, ["winter", api.world.soup, city, percent, None, "2026-12-10", "2026-12-11"]]


def test_an_operator_imports_an_xlsx_sheet_once_and_a_bad_one_is_422_with_every_row(
    api: Api,
) -> None:
    operator = {**api.as_(Role.OPERATOR), "Content-Type": "application/octet-stream"}
    content = WRITERS["xlsx"](sheet(api, 15))
    first = api.client.post("/promotions/imports?name=w.xlsx", content=content, headers=operator)
    assert first.status_code == 201, first.text
    assert first.json()["campaign_ids"] == ["winter"] and first.json()["promotions"] == 1
    again = api.client.post("/promotions/imports", content=content, headers=operator)
    assert again.status_code == 200 and again.json()["created"] is False

    bad = api.client.post(
        "/promotions/imports", content=WRITERS["ods"](sheet(api, "lots")), headers=operator
    )
    assert bad.status_code == 422 and is_problem(bad)
    assert bad.json()["errors"] == [
        {"row": 2, "column": "percent_off", "reason": "'lots' is not a number"}
    ]
    garbage = api.client.post("/promotions/imports", content=b"PK\x03\x04junk", headers=operator)
    assert garbage.status_code == 422 and is_problem(garbage)


def test_only_operators_import(api: Api) -> None:
    content = WRITERS["csv"](sheet(api, 15))
    for role in (Role.CUSTOMER, Role.KITCHEN):
        refused = api.client.post("/promotions/imports", content=content, headers=api.as_(role))
        assert refused.status_code == 403
    assert api.client.post("/promotions/imports", content=content).status_code == 401


def test_the_command_imports_a_csv_and_names_bad_rows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(["seed-demo"], FARMACY_DATA_DIR=str(data)).returncode == 0
    good = tmp_path / "winter.csv"
    good.write_bytes(
        WRITERS["csv"](
            [HEADER, ["winter", "lentil-dal", "city:berlin", 10, None, "2026-12-10", "2026-12-11"]]
        )
    )
    done = run(["promotions", "import", str(good)], FARMACY_DATA_DIR=str(data))
    assert done.returncode == 0, done.stderr
    assert "imported 1 promotions of 1 campaigns (winter)" in done.stdout
    again = run(["promotions", "import", str(good)], FARMACY_DATA_DIR=str(data))
    assert again.returncode == 0 and "nothing changed" in again.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        WRITERS["csv"](
            [HEADER, ["winter", "no-such-meal", "city:berlin", 10, None, "2026-12-10", "x"]]
        )
    )
    refused = run(["promotions", "import", str(bad)], FARMACY_DATA_DIR=str(data))
    assert refused.returncode == 1
    assert "no meal 'no-such-meal'" in refused.stderr and "nothing was imported" in refused.stderr
