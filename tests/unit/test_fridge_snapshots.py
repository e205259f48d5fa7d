"""A fridge's snapshots, of every class version, load through the store's transcoder into a
fridge that answers as one rebuilt from the same history.

Given a history of commands, and the snapshot state each class version stored for it (written
out here as the store held it); when the snapshot is decoded and loaded; then the fridge
answers every question, and decides the next commands, as the fridge the commands built.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from application.store import EventStore
from domain.errors import IdempotencyKeyReused
from domain.fridge import Fridge
from domain.order import OrderLine, OrderTerms
from domain.values import ReleaseReason

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
TODAY = date(2025, 6, 1)
TOMORROW = "2025-06-02"
DEADLINE = NOW + timedelta(minutes=10)
MEALS = ("soup", "salad")
ORDERS = ("o-1", "o-2", "o-3")


def terms(meal_id: str, units: int) -> OrderTerms:
    return OrderTerms(
        customer_id="c-1",
        lines=[OrderLine(meal_id=meal_id, quantity=units, unit_price=Decimal("4.50"))],
        total=Decimal("4.50") * units,
        currency="EUR",
        fingerprint=f"f-{meal_id}",
    )


def lived(*, with_terms: bool) -> Fridge:
    """Stocked, one paid order holding two soups, one cancelled order (a salad)."""
    fridge = Fridge(
        fridge_id="gym-1", venue_id="kreuzberg-gym", city_id="berlin", timezone="Europe/Berlin"
    )
    fridge.deliver("d-1", {"soup": 3, "salad": 2}, date.fromisoformat(TOMORROW), NOW)
    fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW, terms("soup", 2) if with_terms else None)
    fridge.confirm("o-1")
    fridge.reserve("o-2", {"salad": 1}, DEADLINE, NOW, terms("salad", 1) if with_terms else None)
    fridge.release("o-2", ReleaseReason.CANCELLED, NOW)
    if with_terms:
        fridge.report_counts("r-1", NOW, {"soup": 3}, NOW)
    fridge.collect_events()
    return fridge


COMMON = {
    "_created_on": NOW,
    "_modified_on": NOW,
    "fridge_id": "gym-1",
    "venue_id": "kreuzberg-gym",
    "city_id": "berlin",
    "timezone": "Europe/Berlin",
    "status": "active",
    "batches": {"soup": {TOMORROW: 3}, "salad": {TOMORROW: 2}},
    "holds": {"soup": 2},
}

V1_STATE = COMMON | {
    "reservations": {
        "o-1": {"lines": {"soup": 2}, "expires_at": DEADLINE, "confirmed": True, "missing": False}
    },
    "closed_orders": {"o-2": {"outcome": "cancelled", "at": NOW}},
    "deliveries": {"d-1": TOMORROW},
    "last_report_at": None,
}

V2_STATE = COMMON | {
    "class_version": 2,
    "reservations": {
        "o-1": {
            "lines": {"soup": 2},
            "expires_at": DEADLINE,
            "confirmed": True,
            "missing": False,
            "reserved_at": NOW,
            "order": terms("soup", 2),
        }
    },
    "closed_orders": {
        "o-2": {
            "outcome": "cancelled",
            "at": NOW,
            "lines": {"salad": 1},
            "reserved_at": NOW,
            "expires_at": DEADLINE,
            "order": terms("salad", 1),
        }
    },
    "deliveries": {"d-1": "2025-06-02 salad=2,soup=3"},
    "last_report_at": NOW,
    "reports": {"r-1": "2025-06-01T10:00:00+00:00 soup=3"},
}


def through_the_store(state: dict[str, Any], version: int) -> Fridge:
    """The fridge a snapshot with `state` loads into, encoded and decoded as the store does."""
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    snapshot = Fridge.Snapshot(  # type: ignore[attr-defined]
        originator_id=Fridge.create_id("gym-1"),
        originator_version=version,
        timestamp=NOW,
        topic="domain.fridge:Fridge",
        state=state,
    )
    stored = store.mapper.to_stored_event(snapshot)
    loaded: Fridge = store.mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
    return loaded


def answers(fridge: Fridge) -> Any:
    """Everything a user of the fridge may ask it."""
    return (
        {
            m: (fridge.on_hand(m), fridge.on_hand(m, TODAY), fridge.held(m), fridge.shelf(m))
            for m in MEALS
        },
        {m: fridge.available(m, TODAY) for m in MEALS},
        {o: (fridge.reservation_status(o), fridge.promised(o)) for o in ORDERS},
        fridge.open_orders(),
        fridge.meal_ids(),
        fridge.recent_reports,
        fridge.last_report_at,
        fridge.status,
        fridge.version,
    )


def test_a_snapshot_of_today_loads_into_the_same_fridge() -> None:
    fridge = lived(with_terms=True)
    snapshot = Fridge.Snapshot.take(fridge)  # type: ignore[attr-defined]

    loaded = through_the_store(snapshot.state, fridge.version)

    assert answers(loaded) == answers(fridge)
    assert loaded == fridge


def test_a_v2_snapshot_loads_into_a_fridge_that_answers_the_same() -> None:
    fridge = lived(with_terms=True)

    loaded = through_the_store(V2_STATE, fridge.version)

    assert answers(loaded) == answers(fridge)
    for twin in (loaded, fridge):
        assert twin.reserve("o-2", {"salad": 1}, DEADLINE, NOW) is False  # a repeat
        with pytest.raises(IdempotencyKeyReused):
            twin.reserve("o-2", {"soup": 1}, DEADLINE, NOW)
        assert twin.pick_up("o-1", NOW) is True
        twin.report_counts("r-2", NOW + timedelta(minutes=1), {"soup": 0}, NOW)
    assert [type(e) for e in loaded.collect_events()] == [type(e) for e in fridge.collect_events()]
    assert answers(loaded) == answers(fridge)


def test_a_v1_snapshot_loads_into_a_fridge_that_answers_the_same() -> None:
    fridge = lived(with_terms=False)

    loaded = through_the_store(V1_STATE, fridge.version)

    assert answers(loaded) == answers(fridge)
    for twin in (loaded, fridge):
        assert twin.pick_up("o-1", NOW) is True
        assert twin.reserve("o-3", {"salad": 2}, DEADLINE, NOW) is True
    assert answers(loaded) == answers(fridge)
    # What v1 did not keep stays unknown: a settled order's lines, so any repeat is a repeat.
    assert loaded.reserve("o-2", {"soup": 1}, DEADLINE, NOW) is False
    with pytest.raises(IdempotencyKeyReused):
        fridge.reserve("o-2", {"soup": 1}, DEADLINE, NOW)
