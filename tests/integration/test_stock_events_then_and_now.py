"""The stock views give the same rows for a history stored before fridge events said which
batches moved (counts and pickups carried only units per meal, so the views worked the
batches out by the shelf's rules) and for the same history as the fridge records it today.

Given a fridge's history, once as recorded today and once as the store held it before (the
same events without `batches`); when each stream is applied to a stock view; then both give
the same rows, and those rows are the ones the history leads to.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from application.store import EventStore
from domain.fridge import Fridge
from projections.database import SQLiteDatabase
from projections.models import PROJECTIONS
from projections.stock import StockKeeping

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
TWO_DAYS_ON = NOW + timedelta(days=2)
MON, WED = "2025-06-02", "2025-06-04"
STOCK_VIEWS = sorted(name for name, cls in PROJECTIONS.items() if issubclass(cls, StockKeeping))


def history() -> list[Any]:
    """Counts that take and add units, and a pickup beside an expired batch."""
    fridge = Fridge(fridge_id="gym-1", venue_id="gym", city_id="berlin", timezone="Europe/Berlin")
    fridge.deliver("d-1", {"soup": 3}, date.fromisoformat(MON), NOW)
    fridge.deliver("d-2", {"soup": 2, "salad": 2}, date.fromisoformat(WED), NOW)
    fridge.report_counts("r-1", NOW, {"soup": 4}, NOW)  # one soup gone: the oldest
    fridge.report_counts("r-2", NOW + timedelta(minutes=1), {"soup": 7, "curry": 2}, NOW)
    fridge.reserve("o-1", {"soup": 3}, NOW + timedelta(minutes=10), NOW)
    fridge.confirm("o-1")
    fridge.reserve("o-2", {"salad": 1}, NOW + timedelta(minutes=10), NOW)
    fridge.pick_up("o-1", TWO_DAYS_ON)  # Monday's soup has expired: sold ones are fresh
    fridge.report_counts("r-3", TWO_DAYS_ON, {"soup": 1}, TWO_DAYS_ON)
    return fridge.collect_events()


def as_stored_before(events: list[Any]) -> list[Any]:
    """The same events as the store held them before they said which batches moved."""
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    old = []
    for event in events:
        stored = store.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        if isinstance(event, Fridge.StockAdjusted | Fridge.MealsPickedUp):
            assert state.pop("batches") is not None
        old.append(store.mapper.to_domain_event(replace(stored, state=json.dumps(state).encode())))
    return old


def rows(tmp_path: Path, name: str, events: list[Any]) -> dict[str, list[Any]]:
    db = SQLiteDatabase(tmp_path / f"{name}.db")
    view = PROJECTIONS[name]()
    try:
        with db.transaction() as tx:
            view.create_tables(tx)
            for position, event in enumerate(events, start=1):
                view.apply(event, tx, position)
            view.flush(tx)
        with db.snapshot() as tx:
            return {short: sorted(tx.rows(f"SELECT * FROM {view.t[short]}")) for short in view.t}
    finally:
        db.close()


def test_old_events_do_not_say_what_moved_and_new_ones_do() -> None:
    old = as_stored_before(history())

    assert [e.batches for e in old if isinstance(e, Fridge.StockAdjusted)] == [None] * 3
    assert [e.batches for e in old if isinstance(e, Fridge.MealsPickedUp)] == [None]


@pytest.mark.parametrize("name", STOCK_VIEWS)
def test_a_history_stored_before_and_recorded_today_gives_the_same_rows(
    tmp_path: Path, name: str
) -> None:
    today = history()
    before = as_stored_before(today)

    assert rows(tmp_path / "before", name, before) == rows(tmp_path / "today", name, today)


def test_the_stock_rows_are_what_the_history_leads_to(tmp_path: Path) -> None:
    for n, events in enumerate((history(), as_stored_before(history()))):
        stock = rows(tmp_path / str(n), "fridge_stock", events)

        assert stock["batches"] == [
            ("gym-1", "curry", "2025-06-01", 2),  # found by a count: sells on the count's day
            ("gym-1", "salad", WED, 2),
            ("gym-1", "soup", WED, 1),
        ]
        assert stock["holds"] == [("gym-1", "o-2", "salad", 1)]


def replayed(events: list[Any]) -> Fridge:
    fridge = None
    for event in events:
        fridge = event.mutate(fridge)
    assert isinstance(fridge, Fridge)
    return fridge


def test_the_fridge_replays_a_history_stored_before_to_the_same_fridge() -> None:
    today = history()

    before = replayed(as_stored_before(today))

    assert before == replayed(today)
    assert before.shelf("soup") == {date.fromisoformat(WED): 1}
