"""A view that ignores events still moves past them, without decoding them (on SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import Notification

from ops.root import WriteSide
from projections.projection import utc_iso
from projections.reservations import Reservations
from tests.conftest import unique
from tests.integration.projection_fixtures import OpenModels, models
from tests.integration.projection_world import runner_for, table_contents
from tests.integration.world import make_world, place_and_open

__all__ = ["models"]


def test_a_view_ignoring_most_events_moves_its_checkpoint_to_the_head(
    side: WriteSide, models: OpenModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reservations ignore the catalogue and the orders' own events: they are not decoded,
    yet the checkpoint moves past them, and records when the newest of them happened."""
    world = make_world(side)
    place_and_open(side, "gus", "k1", world.fridge_id, {world.soup: 1})
    for n in range(5):  # events the reservations never look at, the newest of the store
        side.catalogue.register_meal(unique(f"wrap{n}"), "Wrap", "5.00", "EUR")
    head = side.store.position() or 0
    every = _every(side)
    batch_size = 3
    lasts = {page[-1].id for page in _pages(every, batch_size)}
    wanted = {n.id for n in every if Reservations().wants(n.topic)}
    assert len(wanted) < len(every) // 2, "the view should ignore most of these events"

    decoded: list[int] = []
    decode = side.store.mapper.to_domain_event

    def spy(notification: Any) -> Any:
        decoded.append(notification.id)
        return decode(notification)

    monkeypatch.setattr(side.store.mapper, "to_domain_event", spy)
    db = models("reservations")
    runner = runner_for(side, db, "reservations", batch_size=batch_size)
    runner.catch_up()

    assert runner.position == head
    with db.snapshot() as tx:
        position, event_at = tx.one(
            "SELECT position, event_at FROM projection_checkpoints WHERE name = ?",
            ("reservations",),
        ) or (None, None)
    assert position == head
    newest: Any = decode(every[-1])
    assert event_at == utc_iso(newest.timestamp)
    assert set(decoded) == wanted | lasts
    assert table_contents(db, "reservations")["reservations"], "the wanted events were applied"


def _pages(notifications: list[Notification], size: int) -> list[list[Notification]]:
    return [notifications[start : start + size] for start in range(0, len(notifications), size)]


def _every(side: WriteSide) -> list[Notification]:
    """Every notification in the store, read in pages as the runner reads them."""
    found: list[Notification] = []
    while page := side.store.recorder.select_notifications(
        start=found[-1].id if found else None, limit=100, inclusive_of_start=False
    ):
        found.extend(page)
    return found
