"""Each event carries the cause it was recorded with; events stored before causes were
recorded still load and replay, and carry none."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from application.causes import caused_by, reacting_to
from application.store import EventStore
from domain.causes import METADATA, Cause, cause_of, log_ids
from domain.fridge import Fridge
from domain.order import Order
from interfaces.http.telemetry import correlation_id_of

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
ORDER_ID = "9f0c1d2e-3b4a-5c6d-8e7f-0a1b2c3d4e5f"
ASKED = Cause("req-1", "corr-1", "req-1", "api")


def popo_store() -> EventStore:
    return EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def a_fridge_with_a_reservation() -> Fridge:
    fridge = Fridge(fridge_id="gym-1", venue_id="gym", city_id="berlin", timezone="Europe/Berlin")
    fridge.deliver("d-1", {"soup": 3}, date(2025, 6, 2), NOW)
    fridge.reserve(ORDER_ID, {"soup": 2}, NOW + timedelta(minutes=10), NOW)
    return fridge


def an_order() -> Order:
    order = Order(
        order_id=ORDER_ID,
        customer_id="ana",
        fridge_id="gym-1",
        venue_id="gym",
        city_id="berlin",
        lines=[{"meal_id": "soup", "quantity": 2, "unit_price": Decimal("6.50")}],
        total=Decimal("13.00"),
        currency="EUR",
        placed_at=NOW,
        payment_due_by=NOW + timedelta(minutes=10),
        request_fingerprint="f",
    )
    order.pay("ref-1")
    return order


def test_events_stored_before_causes_load_replay_and_carry_none() -> None:
    """As the store held them before this change: no `metadata` key at all."""
    store = popo_store()
    fridge, order = a_fridge_with_a_reservation(), an_order()
    store.save(fridge, order)  # no cause given: stored exactly as before

    for stream in (fridge.id, order.id):
        for stored in store.recorder.select_events(stream):
            assert METADATA not in json.loads(stored.state)
    store.repository.cache = None  # load from the stored events, not a cached copy
    loaded_fridge = store.repository.get(fridge.id)
    loaded_order = store.repository.get(order.id)
    assert loaded_fridge.held("soup") == 2
    assert (loaded_order.status, loaded_order.payment_ref) == ("paid", "ref-1")
    assert all(cause_of(event) is None for event in store.events.get(order.id))


def test_events_stored_with_a_cause_load_with_it_and_replay_to_the_same_state() -> None:
    store, before = popo_store(), popo_store()
    before.save(a_fridge_with_a_reservation(), an_order())
    with caused_by(ASKED):
        store.save(a_fridge_with_a_reservation(), an_order())

    order_id, fridge_id = Order.create_id(ORDER_ID), Fridge.create_id("gym-1")
    for stream in (order_id, fridge_id):
        events = list(store.events.get(stream))
        assert [cause_of(event) for event in events] == [ASKED] * len(events)
        # The metadata is no field of the aggregate: it replays to the state it had without.
        with_cause = store.repository.get(stream)
        without = before.repository.get(stream)
        assert vars(with_cause).keys() == vars(without).keys()
        assert with_cause.version == without.version
    reserved = list(store.events.get(fridge_id))[-1]
    assert log_ids(reserved) == {
        "request_id": "req-1",
        "correlation_id": "corr-1",
        "order_id": ORDER_ID,
    }
    placed = next(iter(store.events.get(order_id)))
    assert log_ids(placed)["fridge_id"] == "gym-1"


def test_a_stored_cause_leaves_the_ids_not_set_empty() -> None:
    store = popo_store()
    with caused_by(Cause(correlation_id="corr-2", process="expiry")):
        store.save(a_fridge_with_a_reservation())
    [first, *_] = store.recorder.select_events(Fridge.create_id("gym-1"))
    assert json.loads(first.state)[METADATA] == ["", "corr-2", "", "expiry"]


def test_a_reaction_carries_the_conversation_and_names_the_event_it_reacts_to() -> None:
    store = popo_store()
    with caused_by(ASKED):
        store.save(a_fridge_with_a_reservation())
    reserved = list(store.events.get(Fridge.create_id("gym-1")))[-1]

    reaction = reacting_to(reserved, "fulfilment")

    ref = f"{reserved.originator_id}:{reserved.originator_version}"
    assert reaction == Cause("", "corr-1", ref, "fulfilment")


def test_a_reaction_to_an_event_stored_before_causes_starts_its_own_conversation() -> None:
    store = popo_store()
    store.save(a_fridge_with_a_reservation())
    reserved = list(store.events.get(Fridge.create_id("gym-1")))[-1]

    reaction = reacting_to(reserved, "fulfilment")

    ref = f"{reserved.originator_id}:{reserved.originator_version}"
    assert reaction == Cause("", ref, ref, "fulfilment")


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ([(b"x-correlation-id", b"checkout-42.a:b_c")], "checkout-42.a:b_c"),
        ([(b"x-correlation-id", b"a" * 64)], "a" * 64),
        ([(b"x-correlation-id", b"a" * 65)], "req-9"),  # too long
        ([(b"x-correlation-id", b"a b")], "req-9"),  # not plain
        ([(b"x-correlation-id", b"a\nlevel=error")], "req-9"),  # a forged log line
        ([(b"x-correlation-id", "é".encode())], "req-9"),
        ([(b"x-correlation-id", b"")], "req-9"),
        ([], "req-9"),  # none sent: the request begins the conversation
        ([(b"x-correlation-id", b"first"), (b"x-correlation-id", b"last")], "last"),
    ],
)
def test_a_correlation_id_is_the_callers_if_short_and_plain_else_the_request_id(
    sent: list[tuple[bytes, bytes]], expected: str
) -> None:
    assert correlation_id_of(sent, "req-9") == expected


def test_an_event_stored_with_a_metadata_key_of_unexpected_shape_has_no_cause() -> None:
    store = popo_store()
    store.save(a_fridge_with_a_reservation())
    stored = store.recorder.select_events(Fridge.create_id("gym-1"))[-1]
    state = json.loads(stored.state)
    state[METADATA] = "not a list of ids"
    event = store.mapper.to_domain_event(replace(stored, state=json.dumps(state).encode()))
    assert cause_of(event) is None


def test_a_requests_own_id_as_causation_is_stored_once_and_read_back() -> None:
    store = popo_store()
    with caused_by(ASKED):
        store.save(a_fridge_with_a_reservation())
    stored = store.recorder.select_events(Fridge.create_id("gym-1"))[-1]
    assert json.loads(stored.state)[METADATA] == ["req-1", "corr-1", "", "api"]
    assert cause_of(store.mapper.to_domain_event(stored)) == ASKED
