"""A 20,000-row promotions sheet, imported from CSV, XLSX and ODS (issue 20).

For each format, on a fresh SQLite store with 50 meals in one city: the time to read the file
(`interfaces/spreadsheets.read_sheet`), to check and record it (`Promotions.import_sheet`,
one append), and for a price list in another process's place to take the sheet in (what
every API process does once). The baseline of the same run is reading the same CSV with the
standard library's `csv` alone; the ratios are the point on a shared machine.
Target: each format imports (read + check + record) in under a few seconds.

    .venv/bin/python -m ops.bench.promotions [--rows 20000]
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from application.prices import PriceList
from interfaces.spreadsheets import read_sheet
from ops.root import build_write_side
from ops.settings import Settings
from tests.sheets import HEADER, WRITERS, Cell

MEALS = 50
CAMPAIGNS = 100


def rows(count: int) -> list[list[Cell]]:
    """`count` rows, no two of one campaign, meal and city overlapping in time."""
    out: list[list[Cell]] = [list(HEADER)]
    first = date(2027, 1, 1)
    slots = CAMPAIGNS * MEALS
    for i in range(count):
        day = first + timedelta(days=2 * (i // slots))
        percent = 5 + i % 40
        out.append(
            [
                f"c{i % CAMPAIGNS}",
                f"m{(i // CAMPAIGNS) % MEALS}",
                "city:berlin",
                percent,
                None,
                f"{day.isoformat()} 08:00",
                f"{day.isoformat()} 20:00",
            ]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    sheet_rows = rows(args.rows)
    files = {kind: write(sheet_rows) for kind, write in WRITERS.items()}
    started = time.perf_counter()
    parsed = list(csv.reader(io.StringIO(files["csv"].decode())))
    baseline = time.perf_counter() - started
    assert len(parsed) == args.rows + 1
    print(f"{args.rows} rows; baseline (stdlib csv only): {baseline * 1000:.0f} ms")
    print("format  bytes      read    check+record  total   price list takes in  total/baseline")
    for kind, content in sorted(files.items()):
        with tempfile.TemporaryDirectory() as tmp:
            side = build_write_side(Settings(store="sqlite", data_dir=Path(tmp)))
            try:
                side.catalogue.register_city("berlin", "Berlin", "Europe/Berlin")
                for m in range(MEALS):
                    side.catalogue.register_meal(f"m{m}", f"Meal {m}", "9.90", "EUR")
                t0 = time.perf_counter()
                sheet = read_sheet(f"bench.{kind}", content)
                t1 = time.perf_counter()
                done = side.promotions.import_sheet(sheet)
                t2 = time.perf_counter()
                assert done.created and done.promotions == args.rows
                fresh = PriceList(side.store)
                fresh.refresh()
                t3 = time.perf_counter()
                at = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
                assert fresh.campaigns.best_price(
                    "m0", fresh_price(fresh), "v", "berlin", at
                ) < fresh_price(fresh)
            finally:
                side.close()
        total = t2 - t0
        print(
            f"{kind:6}  {len(content):9,}  {t1 - t0:5.2f} s  {t2 - t1:8.2f} s    "
            f"{total:5.2f} s  {t3 - t2:8.2f} s            {total / baseline:6.0f}x"
        )


def fresh_price(prices: PriceList) -> Decimal:
    lines, _ = prices.price({"m0": 1})
    return lines[0]["unit_price"]


if __name__ == "__main__":
    main()
