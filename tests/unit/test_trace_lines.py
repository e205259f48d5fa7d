"""`farmacy trace`'s lines: what caused each step named by the step it reacted to, and whether
the relay has published it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.errors import NotFound
from application.store import EventStore
from application.trail import Step, order_trail
from domain.causes import Cause
from interfaces.cli.trace import lines

ORDER_ID = "9f0c1d2e-3b4a-5c6d-8e7f-0a1b2c3d4e5f"
AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
RESERVED = Step(3, AT, "fridge", 2, "Fridge.MealsReserved", "f:2", Cause("r", "c", "r", "api"))
BORN = Step(4, AT, "order", 0, "Order.Placed", "o:0", Cause("", "c", "f:2", "fulfilment"))
PAID = Step(9, AT, "order", 1, "Order.PaymentAuthorised", "o:1", Cause("w", "w", "w", "api"))
OLD = Step(None, AT, "order", 2, "Order.ReadyForPickup", "o:2", None)


def test_a_step_names_its_cause_and_says_whether_the_relay_published_it() -> None:
    rows = lines([RESERVED, BORN, PAID, OLD], relayed=5)

    assert [(r["caused_by"], r["relayed"]) for r in rows] == [
        ("request", True),  # in the feed, at or before the relay's position
        ("#3 Fridge.MealsReserved", None),  # the order's birth is published as the reservation
        ("request", False),  # in the feed, after the relay's position
        (None, None),  # stored before causes, at a position the store cannot say
    ]
    assert [(r["process"], r["request_id"], r["correlation_id"]) for r in rows] == [
        ("api", "r", "c"),
        ("fulfilment", None, "c"),
        ("api", "w", "w"),
        (None, None, None),
    ]


def test_without_a_relay_recorded_nothing_is_said_about_publication() -> None:
    assert [row["relayed"] for row in lines([RESERVED, PAID], relayed=None)] == [None, None]


@pytest.mark.parametrize("order_id", ["not-an-order-id", ORDER_ID])
def test_an_order_the_store_does_not_know_is_not_found(order_id: str) -> None:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(NotFound):
        order_trail(store, order_id, lambda stream, version: {})
