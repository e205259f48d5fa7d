"""Events stored before a change still load: what an old reservation event decodes to."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from application.fulfilment import react
from application.store import EventStore
from domain.fridge import Fridge

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
TERMS_FIELDS = ("customer_id", "priced_lines", "total", "currency", "fingerprint")


def test_a_reservation_stored_before_orders_were_born_in_the_fridge_replays() -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    fridge = Fridge(fridge_id="gym-1", venue_id="gym", city_id="berlin", timezone="Europe/Berlin")
    fridge.deliver("d-1", {"soup": 3}, date(2025, 6, 2), NOW)
    fridge.reserve("o-1", {"soup": 2}, NOW + timedelta(minutes=10), NOW)
    events = fridge.collect_events()
    stored = [store.mapper.to_stored_event(event) for event in events]
    # As the store held it before: a reservation with none of the order's terms.
    state = json.loads(stored[-1].state)
    assert set(TERMS_FIELDS) <= set(state)
    for field in TERMS_FIELDS:
        del state[field]
    stored[-1] = replace(stored[-1], state=json.dumps(state).encode())

    loaded = [store.mapper.to_domain_event(s) for s in stored]
    reserved = loaded[-1]

    assert isinstance(reserved, Fridge.MealsReserved)
    assert (reserved.customer_id, reserved.priced_lines, reserved.total) == ("", None, None)
    replayed: Fridge | None = None
    for event in loaded:
        replayed = event.mutate(replayed)  # type: ignore[attr-defined]
    assert replayed is not None and replayed.held("soup") == 2
    assert replayed.promised("o-1") is None  # no terms: nothing to promise
    assert react(reserved) == []  # the old path appended its Order: nothing to open
