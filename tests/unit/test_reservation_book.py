"""The fridge's reservation book: given reservations, when one is held, confirmed, flagged or
settled, then what the book answers (held units, status, promise, who loses, what is due)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.order import OrderLine, OrderTerms
from domain.reservations import Promised, ReservationBook
from domain.values import CLOSED_ORDERS_KEPT_FOR

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
DEADLINE = NOW + timedelta(minutes=10)
SOUP_TERMS = OrderTerms(
    customer_id="c-1",
    lines=[OrderLine(meal_id="soup", quantity=2, unit_price=Decimal("4.50"))],
    total=Decimal("9.00"),
    currency="EUR",
    fingerprint="f-1",
)


def book(*held: tuple[str, dict[str, int]]) -> ReservationBook:
    given = ReservationBook()
    for order_id, lines in held:
        given.hold(order_id, lines, DEADLINE, NOW)
    return given


def test_a_reservation_holds_its_meals_until_it_is_settled() -> None:
    given = book(("o-1", {"soup": 2}))

    given.hold("o-2", {"soup": 1, "salad": 1}, DEADLINE, NOW)

    assert (given.held("soup"), given.held("salad"), given.held("curry")) == (3, 1, 0)
    assert given.status("o-2") == "held"
    assert list(given.open) == ["o-1", "o-2"]


def test_a_confirmed_reservation_is_paid_and_still_holds() -> None:
    given = book(("o-1", {"soup": 2}))

    given.confirm("o-1")

    assert given.status("o-1") == "confirmed"
    assert given.held("soup") == 2


def test_a_settled_reservation_holds_nothing_and_is_remembered_with_its_promise() -> None:
    given = ReservationBook()
    given.hold("o-1", {"soup": 2}, DEADLINE, NOW, SOUP_TERMS)

    given.close("o-1", "picked_up", NOW)

    assert given.held("soup") == 0
    assert given.status("o-1") == "picked_up"
    assert given.lines_known("o-1") == {"soup": 2}
    assert given.promised("o-1") == Promised(SOUP_TERMS, NOW, DEADLINE, "picked_up")
    assert given.status("o-9") is None and given.lines_known("o-9") is None


def test_an_order_without_terms_promises_nothing() -> None:
    given = book(("o-1", {"soup": 2}))

    assert given.promised("o-1") is None


def test_settled_orders_are_forgotten_when_a_reservation_comes_two_days_later() -> None:
    given = book(("o-1", {"soup": 1}), ("o-2", {"soup": 1}))
    given.close("o-1", "cancelled", NOW)
    given.close("o-2", "expired", NOW + timedelta(days=1))
    later = NOW + CLOSED_ORDERS_KEPT_FOR + timedelta(seconds=1)

    given.hold("o-3", {"soup": 1}, later, later)

    assert given.status("o-1") is None
    assert given.status("o-2") == "expired"


def test_only_unpaid_reservations_past_their_deadline_are_due() -> None:
    given = book(("o-1", {"soup": 1}), ("o-2", {"soup": 1}))
    given.hold("o-3", {"soup": 1}, DEADLINE + timedelta(minutes=5), NOW)
    given.confirm("o-2")

    assert given.due(DEADLINE - timedelta(seconds=1)) == []
    assert given.due(DEADLINE) == ["o-1"]
    assert given.due(DEADLINE + timedelta(minutes=5)) == ["o-1", "o-3"]


def test_the_newest_reservations_lose_when_meals_are_missing() -> None:
    given = book(("o-1", {"soup": 2}), ("o-2", {"soup": 1}), ("o-3", {"salad": 1, "soup": 1}))

    assert given.losing("soup", 0) == []
    assert given.losing("soup", 1) == ["o-3"]
    assert given.losing("soup", 2) == ["o-3", "o-2"]
    assert given.losing("salad", 1) == ["o-3"]


def test_reservations_already_flagged_count_against_the_gap_and_are_not_named_again() -> None:
    given = book(("o-1", {"soup": 2}), ("o-2", {"soup": 1}), ("o-3", {"soup": 1}))

    given.flag_missing(["o-3"])

    assert given.losing("soup", 1) == []
    assert given.losing("soup", 2) == ["o-2"]


def test_a_copied_book_changes_on_its_own() -> None:
    given = book(("o-1", {"soup": 2}), ("o-2", {"soup": 1}))

    copied = given.copy()
    copied.confirm("o-1")
    copied.close("o-2", "cancelled", NOW)
    copied.hold("o-3", {"salad": 1}, DEADLINE, NOW)

    assert given.status("o-1") == "held"
    assert given.status("o-2") == "held"
    assert given.status("o-3") is None
    assert (given.held("soup"), given.held("salad")) == (3, 0)
    assert (copied.held("soup"), copied.held("salad")) == (2, 1)
