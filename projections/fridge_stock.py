"""Fridge stock: per fridge and meal, on hand, held and available, and the last count's age.

Sharded by fridge. Operators and the fridge cloud read it; it shows every batch, so what is
past its best-before but not yet discarded is visible (on hand, but not fresh).

It keeps per-fridge versions (projections/versions.py), so an API process answers a
fridge's stock from memory while nothing it shows has changed (`FridgeStockQueries.stock_now`).
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import ClassVar

from domain.shelf import available
from projections.availability import availability
from projections.database import Tx
from projections.freshness import Answer, Reader, ReadsInFlight, ReadState, stamped
from projections.stale import stale_since
from projections.stock import StockKeeping
from projections.versions import Remembered, Seen, Versioned, version_of, version_tables


class FridgeStock(Versioned, StockKeeping):
    name = "fridge_stock"
    tables: ClassVar[dict[str, str]] = {**StockKeeping.tables, **version_tables("fridge_id")}
    version_key = "fridge_id"

    def changes(self, event: object, tx: Tx) -> str | None:
        """Every event this model takes is a fridge's: that fridge's stock changed."""
        fridge = self.stock.fridge(tx, str(getattr(event, "originator_id", "")))
        return None if fridge is None else fridge.fridge_id


@dataclass(frozen=True)
class MealStock:
    meal_id: str
    on_hand: int
    fresh: int
    held: int
    available: int


@dataclass(frozen=True)
class FridgeStockReport:
    fridge_id: str
    venue_id: str
    status: str
    last_report_age_seconds: float | None
    meals: list[MealStock]
    stale_since: str | None = None  # marked stale by the fridge cloud's poller, since when
    last_report_at: str | None = None  # when the last count was taken (the age is from it)
    version: int = 0  # the fridge's version in the same snapshot (projections/versions.py)
    timezone: str = "UTC"  # the fridge's (fresh is by its local day)

    def at(self, now: datetime) -> FridgeStockReport:
        """The same report, its last count's age as of `now`."""
        return replace(self, last_report_age_seconds=report_age(self.last_report_at, now))


def report_age(last_report_at: str | None, now: datetime) -> float | None:
    if not last_report_at:
        return None
    return (now - datetime.fromisoformat(last_report_at)).total_seconds()


def fridge_report(
    tx: Tx, view: FridgeStock, fridge_id: str, now: datetime
) -> FridgeStockReport | None:
    row = tx.one(
        f"SELECT venue_id, status, last_report_at, timezone FROM {view.t['fridges']} "
        "WHERE fridge_id = ?",
        (fridge_id,),
    )
    if row is None:
        return None
    venue_id, status, last_report_at, timezone = row
    stock = availability(tx, view, now, "f.fridge_id = ?", (fridge_id,))
    meals = [
        MealStock(meal_id, on_hand, fresh, held, available(fresh, held))
        for (_, meal_id), (on_hand, fresh, held) in sorted(stock.items())
    ]
    return FridgeStockReport(
        fridge_id,
        venue_id,
        status,
        report_age(last_report_at, now),
        meals,
        stale_since(tx, view.t, fridge_id),
        last_report_at,
        version_of(tx, view.t, "fridge_id", fridge_id),
        str(timezone),
    )


class FridgeStockQueries:
    """What the API asks the fridge stock model, through a `Reader` (its `ReadSide`).

    With `seen` (the API's last poll of the fridges' versions), `stock_now` answers a
    fridge's stock from memory while the fridge's version has not moved, at the position of
    that poll; a `min_position` beyond it reads the database, waiting (bounded)."""

    def __init__(self, reader: Reader, seen: Seen | None = None) -> None:
        self.reader = reader
        self.seen = seen
        self.reports: Remembered[FridgeStockReport] = Remembered()
        self.in_flight = ReadsInFlight()

    def stock(
        self, fridge_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[FridgeStockReport | None]:
        """The fridge's stock read from the database (None: no such fridge, or not yet)."""
        return self.reader.read(
            FridgeStock, lambda tx, view: fridge_report(tx, view, fridge_id, now), min_position
        )

    async def stock_now(
        self, fridge_id: str, now: datetime, min_position: int | None = None
    ) -> Answer[FridgeStockReport | None]:
        """GET /fridges/{fridge_id}/stock: from memory when nothing it shows has changed
        since this process read it (the last count's age always as of `now`)."""
        seen = self.seen() if self.seen is not None else None
        found = self.reports.current(seen, fridge_id, now, min_position)
        if found is not None:
            report, state = found
            return stamped(report.at(now), state)

        def read(tx: Tx, view: FridgeStock, state: ReadState) -> FridgeStockReport | None:
            report = fridge_report(tx, view, fridge_id, now)
            if report is not None:  # made-up ids are read, never kept
                self.reports.keep(fridge_id, report, report.version, state, (report.timezone,), now)
            return report

        def kept(state: ReadState) -> FridgeStockReport | None:
            report = self.reports.at(state, fridge_id, now)
            return None if report is None else report.at(now)

        def again() -> Answer[FridgeStockReport | None] | None:
            latest = self.reports.current(self.seen() if self.seen else None, fridge_id, now, None)
            return None if latest is None else stamped(latest[0].at(now), latest[1])

        return await self.in_flight.read(  # one read of the fridge at a time
            fridge_id,
            lambda: self.reader.read_async(FridgeStock, read, min_position, kept),
            again,
            alone=seen is None or min_position is not None,
        )
