"""The fridge's rules, one given/when/then each. Pure: fixed aware datetimes, no clock, no I/O.

The fridge is in Berlin (UTC+2 in June), so "today" at the fridge is not always UTC's today.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import (
    AlreadyExists,
    FridgeUnavailable,
    IdempotencyKeyReused,
    InvalidRequest,
    NotPaidYet,
    ReservationClosed,
    ReservationNotFound,
    SoldOut,
)
from domain.fridge import Fridge, FridgeStatus
from domain.order import OrderLine, OrderTerms
from domain.values import CLOSED_ORDERS_KEPT_FOR, MOST_UNITS, REPORTS_KEPT_FOR, ReleaseReason

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
TODAY = date(2025, 6, 1)
TOMORROW = TODAY + timedelta(days=1)
LATER = TODAY + timedelta(days=3)
DEADLINE = NOW + timedelta(minutes=10)
NAIVE = datetime(2025, 6, 1, 10, 0)  # deliberately naive


# ---- given ---------------------------------------------------------------------------------


def installed() -> Fridge:
    fridge = Fridge(
        fridge_id="gym-1", venue_id="kreuzberg-gym", city_id="berlin", timezone="Europe/Berlin"
    )
    fridge.collect_events()
    return fridge


def stocked(best_before: date = TOMORROW, **units: int) -> Fridge:
    fridge = installed()
    fridge.deliver("d-1", units or {"soup": 3, "salad": 2}, best_before, NOW)
    fridge.collect_events()
    return fridge


def with_reservations(*orders: tuple[str, dict[str, int]], **units: int) -> Fridge:
    fridge = stocked(**units)
    for order_id, lines in orders:
        assert fridge.reserve(order_id, lines, DEADLINE, NOW)
    fridge.collect_events()
    return fridge


def paid(order_id: str = "o-1", lines: dict[str, int] | None = None) -> Fridge:
    fridge = with_reservations((order_id, lines or {"soup": 1}))
    fridge.confirm(order_id)
    fridge.collect_events()
    return fridge


# ---- then ----------------------------------------------------------------------------------


def names(fridge: Fridge) -> list[str]:
    return [type(e).__name__ for e in fridge.pending_events]


def only_event(fridge: Fridge, name: str) -> Any:
    events = [e for e in fridge.pending_events if type(e).__name__ == name]
    assert len(events) == 1, names(fridge)
    return events[0]


def no_events(fridge: Fridge) -> None:
    assert fridge.pending_events == []


# ---- installing ----------------------------------------------------------------------------


def test_installing_a_fridge_records_installed_at_version_0() -> None:
    fridge = Fridge(fridge_id="gym-1", venue_id="v", city_id="berlin", timezone="Europe/Berlin")

    assert names(fridge) == ["Installed"]
    assert fridge.version == 0
    assert fridge.id == Fridge.create_id("gym-1")
    assert fridge.status == FridgeStatus.ACTIVE


def test_same_fridge_in_same_venue_is_a_repeat_but_not_in_another() -> None:
    fridge = installed()
    again = Fridge(fridge_id="gym-1", venue_id="kreuzberg-gym", city_id="berlin", timezone="UTC")
    moved = Fridge(fridge_id="gym-1", venue_id="mitte-office", city_id="berlin", timezone="UTC")

    assert fridge.same_as(again)
    assert not fridge.same_as(moved)


# ---- deliveries ----------------------------------------------------------------------------


def test_delivery_adds_a_batch() -> None:
    fridge = installed()

    assert fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW) is True

    event = only_event(fridge, "MealsDelivered")
    assert (event.delivery_id, event.lines, event.best_before) == ("d-1", {"soup": 3}, TOMORROW)
    assert fridge.shelf("soup") == {TOMORROW: 3}
    assert fridge.available("soup", TODAY) == 3


def test_repeated_delivery_is_a_no_op_without_events() -> None:
    fridge = stocked(soup=3)

    assert fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW) is False

    no_events(fridge)
    assert fridge.shelf("soup") == {TOMORROW: 3}


@pytest.mark.parametrize(
    ("lines", "best_before"),
    [({"soup": 5, "salad": 1}, TOMORROW), ({"soup": 3}, LATER)],
    ids=["other lines", "other best-before"],
)
def test_a_delivery_id_reused_for_another_delivery_is_refused(
    lines: dict[str, int], best_before: date
) -> None:
    fridge = stocked(soup=3)

    with pytest.raises(AlreadyExists):
        fridge.deliver("d-1", lines, best_before, NOW)

    no_events(fridge)
    assert fridge.shelf("soup") == {TOMORROW: 3}


def test_a_delivery_remembered_by_an_old_snapshot_is_compared_by_its_best_before() -> None:
    """Snapshots taken before deliveries were fingerprinted hold only the best-before."""
    fridge = from_a_v1_snapshot()

    assert fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW) is False
    with pytest.raises(AlreadyExists):
        fridge.deliver("d-1", {"soup": 3}, LATER, NOW)


def test_one_delivery_brings_at_most_what_a_count_can_report() -> None:
    fridge = installed()
    lines = {f"meal-{n}": 1000 for n in range(10)}

    assert fridge.deliver("d-1", lines, TOMORROW, NOW)
    with pytest.raises(InvalidRequest, match="at most 10000"):
        fridge.deliver("d-2", {**lines, "meal-10": 1}, TOMORROW, NOW)
    with pytest.raises(InvalidRequest):
        fridge.deliver("d-3", {"soup": MOST_UNITS + 1}, TOMORROW, NOW)


def test_deliveries_with_the_same_best_before_add_up() -> None:
    fridge = stocked(soup=3)

    fridge.deliver("d-2", {"soup": 2}, TOMORROW, NOW)

    assert fridge.on_hand("soup") == 5


def test_delivery_already_past_its_best_before_is_refused() -> None:
    fridge = installed()

    with pytest.raises(InvalidRequest):
        fridge.deliver("d-1", {"soup": 3}, TODAY - timedelta(days=1), NOW)

    no_events(fridge)


def test_delivery_best_before_today_is_accepted() -> None:
    fridge = installed()

    assert fridge.deliver("d-1", {"soup": 3}, TODAY, NOW)

    assert fridge.available("soup", TODAY) == 3


def test_delivery_to_a_retired_fridge_is_refused() -> None:
    fridge = installed()
    fridge.retire()
    fridge.collect_events()

    with pytest.raises(FridgeUnavailable) as refused:
        fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW)

    assert refused.value.status == FridgeStatus.RETIRED
    no_events(fridge)


def test_delivery_to_an_offline_fridge_is_accepted() -> None:
    fridge = installed()
    fridge.take_offline("door sensor")
    fridge.collect_events()

    assert fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW)

    assert names(fridge) == ["MealsDelivered"]


@pytest.mark.parametrize(
    ("delivery_id", "lines"),
    [
        ("d-1", {}),
        ("d-1", {"soup": 0}),
        ("d-1", {"soup": -1}),
        ("d-1", {"soup": True}),
        ("d-1", {"Soup": 1}),
        ("D-1", {"soup": 1}),
        ("-d1", {"soup": 1}),
    ],
)
def test_malformed_delivery_is_refused(delivery_id: str, lines: dict[str, int]) -> None:
    fridge = installed()

    with pytest.raises(InvalidRequest):
        fridge.deliver(delivery_id, lines, TOMORROW, NOW)

    no_events(fridge)


def test_delivery_with_a_naive_now_is_refused() -> None:
    fridge = installed()

    with pytest.raises(InvalidRequest):
        fridge.deliver("d-1", {"soup": 1}, TOMORROW, NAIVE)

    no_events(fridge)


# ---- best-before is a local date -----------------------------------------------------------


def test_today_is_the_local_date_at_the_fridge() -> None:
    fridge = installed()

    assert fridge.today(datetime(2025, 6, 1, 21, 59, tzinfo=UTC)) == date(2025, 6, 1)
    assert fridge.today(datetime(2025, 6, 1, 22, 0, tzinfo=UTC)) == date(2025, 6, 2)


def test_a_batch_is_sold_up_to_and_including_its_best_before_day() -> None:
    fridge = stocked(best_before=TODAY, soup=2)
    last_minute = datetime(2025, 6, 1, 21, 59, tzinfo=UTC)  # 23:59 in Berlin

    assert fridge.reserve("o-1", {"soup": 1}, last_minute + timedelta(minutes=10), last_minute)

    assert names(fridge) == ["MealsReserved"]


def test_a_batch_past_its_best_before_in_local_time_is_not_available() -> None:
    fridge = stocked(best_before=TODAY, soup=2)
    local_midnight = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)  # still 1 June in UTC

    with pytest.raises(SoldOut) as refused:
        fridge.reserve("o-1", {"soup": 1}, local_midnight + timedelta(minutes=10), local_midnight)

    assert refused.value.available == {"soup": 0}
    assert fridge.available("soup", fridge.today(local_midnight)) == 0
    assert fridge.on_hand("soup") == 2  # still physically there until discarded
    no_events(fridge)


def test_discard_expired_takes_only_past_batches_off_the_shelf() -> None:
    fridge = stocked(best_before=TODAY, soup=2, salad=1)
    fridge.deliver("d-2", {"soup": 4}, LATER, NOW)
    fridge.collect_events()
    next_day = NOW + timedelta(days=1)

    assert fridge.discard_expired(next_day) == {"soup": 2, "salad": 1}

    event = only_event(fridge, "MealsExpired")
    assert event.batches == [
        {"meal_id": "salad", "best_before": TODAY.isoformat(), "quantity": 1},
        {"meal_id": "soup", "best_before": TODAY.isoformat(), "quantity": 2},
    ]
    assert (fridge.shelf("soup"), fridge.shelf("salad")) == ({LATER: 4}, {})


def test_discard_expired_keeps_batches_on_their_best_before_day() -> None:
    fridge = stocked(best_before=TODAY, soup=2)

    assert fridge.discard_expired(datetime(2025, 6, 1, 21, 59, tzinfo=UTC)) == {}

    no_events(fridge)
    assert fridge.on_hand("soup") == 2


def test_discard_expired_names_reservations_whose_meals_expired() -> None:
    fridge = stocked(best_before=TODAY, soup=2)
    fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW)
    fridge.confirm("o-1")
    fridge.collect_events()

    fridge.discard_expired(NOW + timedelta(days=1))

    assert names(fridge) == ["MealsExpired", "ReservedMealsMissing"]
    missing = only_event(fridge, "ReservedMealsMissing")
    assert (missing.meal_id, missing.held, missing.on_hand, missing.order_ids) == (
        "soup",
        2,
        0,
        ["o-1"],
    )


def test_discard_expired_with_a_naive_now_is_refused() -> None:
    fridge = stocked()

    with pytest.raises(InvalidRequest):
        fridge.discard_expired(NAIVE)

    no_events(fridge)


# ---- reserving -----------------------------------------------------------------------------


def test_reserving_holds_meals_for_the_order() -> None:
    fridge = stocked(soup=3, salad=2)

    assert fridge.reserve("o-1", {"soup": 2, "salad": 1}, DEADLINE, NOW) is True

    event = only_event(fridge, "MealsReserved")
    assert (event.order_id, event.lines, event.expires_at, event.reserved_at) == (
        "o-1",
        {"soup": 2, "salad": 1},
        DEADLINE,
        NOW,
    )
    assert (fridge.held("soup"), fridge.available("soup", TODAY)) == (2, 1)
    assert (fridge.held("salad"), fridge.available("salad", TODAY)) == (1, 1)
    assert fridge.on_hand("soup") == 3  # still in the fridge until picked up


def test_sold_out_refuses_the_order_whole_and_says_what_is_available() -> None:
    fridge = with_reservations(("o-1", {"soup": 2}), soup=3, salad=2)

    with pytest.raises(SoldOut) as refused:
        fridge.reserve("o-2", {"soup": 2, "salad": 1}, DEADLINE, NOW)

    assert refused.value.available == {"soup": 1, "salad": 2}
    assert refused.value.fridge_id == "gym-1"
    no_events(fridge)
    assert (fridge.held("soup"), fridge.held("salad")) == (2, 0)
    assert fridge.reservation_status("o-2") is None


def test_sold_out_for_a_meal_the_fridge_never_had() -> None:
    fridge = stocked(soup=3)

    with pytest.raises(SoldOut) as refused:
        fridge.reserve("o-1", {"curry": 1}, DEADLINE, NOW)

    assert refused.value.available == {"curry": 0}
    no_events(fridge)


def test_reserving_exactly_what_is_available_succeeds() -> None:
    fridge = stocked(soup=3)

    assert fridge.reserve("o-1", {"soup": 3}, DEADLINE, NOW)

    assert fridge.available("soup", TODAY) == 0


def test_repeating_a_reservation_is_a_no_op() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    assert fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW) is False

    no_events(fridge)
    assert fridge.held("soup") == 1


@pytest.mark.parametrize("status", ["offline", "retired"])
def test_reserving_on_an_unavailable_fridge_is_refused(status: str) -> None:
    fridge = stocked()
    if status == "offline":
        fridge.take_offline("cooling failure")
    else:
        fridge.retire()
    fridge.collect_events()

    with pytest.raises(FridgeUnavailable) as refused:
        fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW)

    assert refused.value.status == status
    no_events(fridge)


def test_reserving_again_once_back_online_succeeds() -> None:
    fridge = stocked()
    fridge.take_offline("cooling failure")
    fridge.bring_online()
    fridge.collect_events()

    assert fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW)


@pytest.mark.parametrize(
    ("expires_at", "now"), [(NAIVE, NOW), (DEADLINE, NAIVE)], ids=["expires_at", "now"]
)
def test_reserving_with_naive_datetimes_is_refused(expires_at: datetime, now: datetime) -> None:
    fridge = stocked()

    with pytest.raises(InvalidRequest):
        fridge.reserve("o-1", {"soup": 1}, expires_at, now)

    no_events(fridge)


@pytest.mark.parametrize("lines", [{}, {"soup": 0}, {"soup": -2}, {"soup": 1.5}, {"bad id": 1}])
def test_reserving_malformed_lines_is_refused(lines: dict[str, Any]) -> None:
    fridge = stocked()

    with pytest.raises(InvalidRequest):
        fridge.reserve("o-1", lines, DEADLINE, NOW)

    no_events(fridge)


# ---- confirming and picking up -------------------------------------------------------------


def test_confirming_a_reservation() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    assert fridge.confirm("o-1") is True

    assert only_event(fridge, "ReservationConfirmed").order_id == "o-1"
    assert fridge.reservation_status("o-1") == "confirmed"


def test_confirming_twice_is_a_no_op() -> None:
    fridge = paid("o-1")

    assert fridge.confirm("o-1") is False

    no_events(fridge)


def test_confirming_an_unknown_order_is_refused() -> None:
    fridge = stocked()

    with pytest.raises(ReservationNotFound):
        fridge.confirm("o-1")

    no_events(fridge)


def test_confirming_a_released_reservation_is_refused() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))
    fridge.release("o-1", ReleaseReason.CANCELLED, NOW)
    fridge.collect_events()

    with pytest.raises(ReservationClosed) as refused:
        fridge.confirm("o-1")

    assert refused.value.outcome == "cancelled"
    no_events(fridge)


def test_pickup_requires_a_confirmed_reservation() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    with pytest.raises(NotPaidYet):
        fridge.pick_up("o-1", NOW)

    no_events(fridge)
    assert fridge.held("soup") == 1


def test_picking_up_takes_the_meals_out_of_the_fridge() -> None:
    fridge = paid("o-1", {"soup": 2})

    assert fridge.pick_up("o-1", NOW + timedelta(minutes=3)) is True

    event = only_event(fridge, "MealsPickedUp")
    assert (event.order_id, event.lines) == ("o-1", {"soup": 2})
    assert event.batches == {"soup": {"2025-06-02": -2}}
    assert fridge.on_hand("soup") == 1
    assert fridge.held("soup") == 0
    assert fridge.available("soup", TODAY) == 1
    assert fridge.open_orders() == []
    assert fridge.reservation_status("o-1") == "picked_up"


def test_a_paid_order_cancelled_before_pickup_puts_its_meals_back() -> None:
    fridge = paid("o-1", {"soup": 2})

    assert fridge.cancel("o-1", NOW) is True

    event = only_event(fridge, "ReservationReleased")
    assert (event.order_id, event.reason) == ("o-1", "cancelled")
    assert fridge.available("soup", TODAY) == 3
    assert fridge.reservation_status("o-1") == "cancelled"


def test_cancelling_again_changes_nothing() -> None:
    fridge = paid("o-1")
    fridge.cancel("o-1", NOW)
    fridge.collect_events()

    assert fridge.cancel("o-1", NOW) is False

    no_events(fridge)


def test_an_order_taken_out_of_the_fridge_cannot_be_cancelled() -> None:
    fridge = paid("o-1")
    fridge.pick_up("o-1", NOW)
    fridge.collect_events()

    with pytest.raises(ReservationClosed) as refused:
        fridge.cancel("o-1", NOW)

    assert refused.value.outcome == "picked_up"
    no_events(fridge)
    assert fridge.on_hand("soup") == 2


def test_picking_up_takes_fresh_units_and_leaves_an_expired_batch_to_be_discarded() -> None:
    fridge = stocked(best_before=TODAY, soup=1)
    fridge.deliver("d-2", {"soup": 1}, LATER, NOW)
    next_day = NOW + timedelta(days=1)
    fridge.reserve("o-1", {"soup": 1}, next_day + timedelta(minutes=10), next_day)
    fridge.confirm("o-1")
    fridge.collect_events()

    fridge.pick_up("o-1", next_day)

    # The meal sold was a fresh one: what is left is yesterday's, not for sale.
    assert only_event(fridge, "MealsPickedUp").batches == {"soup": {"2025-06-04": -1}}
    assert fridge.shelf("soup") == {TODAY: 1}
    assert fridge.available("soup", fridge.today(next_day)) == 0
    assert fridge.discard_expired(next_day) == {"soup": 1}


def test_picking_up_twice_is_a_no_op() -> None:
    fridge = paid("o-1")
    fridge.pick_up("o-1", NOW)
    fridge.collect_events()

    assert fridge.pick_up("o-1", NOW) is False

    no_events(fridge)
    assert fridge.on_hand("soup") == 2


def test_picking_up_a_released_reservation_is_refused() -> None:
    fridge = paid("o-1")
    fridge.release("o-1", ReleaseReason.REFUNDED, NOW)
    fridge.collect_events()

    with pytest.raises(ReservationClosed) as refused:
        fridge.pick_up("o-1", NOW)

    assert refused.value.outcome == "refunded"
    no_events(fridge)


def test_picking_up_an_unknown_order_is_refused() -> None:
    fridge = stocked()

    with pytest.raises(ReservationNotFound):
        fridge.pick_up("o-1", NOW)

    no_events(fridge)


# ---- releasing -----------------------------------------------------------------------------


def test_releasing_puts_held_meals_back_on_sale() -> None:
    fridge = with_reservations(("o-1", {"soup": 2}), ("o-2", {"soup": 1}))

    assert fridge.release("o-1", ReleaseReason.PAYMENT_FAILED, NOW) is True

    event = only_event(fridge, "ReservationReleased")
    assert (event.order_id, event.lines, event.reason) == ("o-1", {"soup": 2}, "payment_failed")
    assert fridge.held("soup") == 1
    assert fridge.available("soup", TODAY) == 2
    assert fridge.release("o-1", ReleaseReason.PAYMENT_FAILED, NOW) is False  # settled


def test_releasing_twice_is_a_no_op() -> None:
    fridge = with_reservations(("o-1", {"soup": 2}))
    fridge.release("o-1", ReleaseReason.CANCELLED, NOW)
    fridge.collect_events()

    assert fridge.release("o-1", ReleaseReason.CANCELLED, NOW) is False
    assert fridge.release("o-1", ReleaseReason.REFUNDED, NOW) is False

    no_events(fridge)
    assert fridge.reservation_status("o-1") == "cancelled"


def test_releasing_after_pickup_is_a_no_op() -> None:
    fridge = paid("o-1")
    fridge.pick_up("o-1", NOW)
    fridge.collect_events()

    assert fridge.release("o-1", ReleaseReason.REFUNDED, NOW) is False

    no_events(fridge)
    assert fridge.reservation_status("o-1") == "picked_up"


def test_releasing_an_unknown_order_is_refused() -> None:
    fridge = stocked()

    with pytest.raises(ReservationNotFound):
        fridge.release("o-1", ReleaseReason.CANCELLED, NOW)

    no_events(fridge)


def test_releasing_with_a_naive_now_is_refused() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    with pytest.raises(InvalidRequest):
        fridge.release("o-1", ReleaseReason.CANCELLED, NAIVE)

    no_events(fridge)


# ---- expiring reservations -----------------------------------------------------------------


def test_expire_reservations_releases_only_unconfirmed_ones_past_their_deadline() -> None:
    fridge = stocked(soup=5)
    fridge.reserve("due", {"soup": 1}, DEADLINE, NOW)
    fridge.reserve("not-yet", {"soup": 1}, DEADLINE + timedelta(seconds=1), NOW)
    fridge.reserve("paid", {"soup": 1}, DEADLINE, NOW)
    fridge.confirm("paid")
    fridge.collect_events()

    assert fridge.expire_reservations(DEADLINE) == ["due"]

    event = only_event(fridge, "ReservationReleased")
    assert (event.order_id, event.reason) == ("due", "expired")
    assert fridge.open_orders() == ["not-yet", "paid"]
    assert fridge.held("soup") == 2


def test_expire_reservations_with_nothing_due_records_nothing() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    assert fridge.expire_reservations(DEADLINE - timedelta(seconds=1)) == []

    no_events(fridge)


def test_expire_reservations_with_a_naive_now_is_refused() -> None:
    fridge = stocked()

    with pytest.raises(InvalidRequest):
        fridge.expire_reservations(NAIVE)

    no_events(fridge)


# ---- closed orders -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(ReleaseReason))
def test_the_same_request_for_a_released_order_is_a_repeat(reason: ReleaseReason) -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))
    fridge.release("o-1", reason, NOW)
    fridge.collect_events()

    assert fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW) is False

    no_events(fridge)
    assert fridge.held("soup") == 0


@pytest.mark.parametrize("reason", list(ReleaseReason))
def test_another_request_for_a_released_order_is_refused(reason: ReleaseReason) -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))
    fridge.release("o-1", reason, NOW)
    fridge.collect_events()

    with pytest.raises(IdempotencyKeyReused):
        fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW)

    no_events(fridge)
    assert fridge.held("soup") == 0


def test_the_same_request_for_a_picked_up_order_is_a_repeat() -> None:
    fridge = paid("o-1")
    fridge.pick_up("o-1", NOW)
    fridge.collect_events()

    assert fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW) is False

    no_events(fridge)
    assert fridge.on_hand("soup") == 2


def test_another_request_for_an_open_reservation_is_refused_and_holds_nothing_more() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    with pytest.raises(IdempotencyKeyReused) as refused:
        fridge.reserve("o-1", {"soup": 3}, DEADLINE, NOW)

    assert refused.value.order_id == "o-1"
    no_events(fridge)
    assert fridge.held("soup") == 1
    assert fridge.available("soup", TODAY) == 2


def test_another_request_for_an_order_is_refused_even_when_it_would_not_fit() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    with pytest.raises(IdempotencyKeyReused):
        fridge.reserve("o-1", {"soup": 99}, DEADLINE, NOW)

    no_events(fridge)


# ---- the order's birth ---------------------------------------------------------------------


def terms(**lines: int) -> OrderTerms:
    priced = [
        OrderLine(meal_id=meal, quantity=units, unit_price=Decimal("4.50"))
        for meal, units in lines.items()
    ]
    return OrderTerms(
        customer_id="c-1",
        lines=priced,
        total=Decimal("4.50") * sum(lines.values()),
        currency="EUR",
        fingerprint="f-1",
    )


def test_a_reservation_carries_what_its_order_was_promised() -> None:
    fridge = stocked()

    assert fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW, terms(soup=2)) is True

    event = only_event(fridge, "MealsReserved")
    assert event.order_id == "o-1"
    assert event.customer_id == "c-1"
    assert event.priced_lines == [{"meal_id": "soup", "quantity": 2, "unit_price": Decimal("4.50")}]
    assert (event.total, event.currency, event.fingerprint) == (Decimal("9.00"), "EUR", "f-1")
    assert (event.expires_at, event.reserved_at) == (DEADLINE, NOW)


def test_what_an_order_was_promised_is_known_while_open_and_once_settled() -> None:
    fridge = stocked()
    fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW, terms(soup=2))

    promised = fridge.promised("o-1")
    assert promised is not None and promised.outcome is None
    assert (promised.terms["total"], promised.placed_at, promised.payment_due_by) == (
        Decimal("9.00"),
        NOW,
        DEADLINE,
    )

    fridge.release("o-1", ReleaseReason.CANCELLED, NOW)
    settled = fridge.promised("o-1")
    assert settled is not None and settled.outcome == "cancelled"
    assert settled.terms == promised.terms
    assert fridge.promised("o-2") is None


def test_priced_lines_that_differ_from_the_lines_held_are_refused() -> None:
    fridge = stocked()

    with pytest.raises(InvalidRequest):
        fridge.reserve("o-1", {"soup": 1}, DEADLINE, NOW, terms(soup=2))

    no_events(fridge)


def from_a_v1_snapshot(**state: Any) -> Fridge:
    """A fridge as a snapshot taken before class version 2 held it (given as its stored state):
    no class version, no order terms, no lines of settled orders, no remembered count reports,
    deliveries remembered by their best-before alone."""
    old = Fridge.Snapshot(  # type: ignore[attr-defined]
        originator_id=Fridge.create_id("gym-1"),
        originator_version=5,
        timestamp=NOW,
        topic="domain.fridge:Fridge",
        state={
            "fridge_id": "gym-1",
            "venue_id": "kreuzberg-gym",
            "city_id": "berlin",
            "timezone": "Europe/Berlin",
            "status": "active",
            "batches": {"soup": {TOMORROW.isoformat(): 3}},
            "holds": {},
            "reservations": {},
            "closed_orders": {},
            "deliveries": {"d-1": TOMORROW.isoformat()},
            "last_report_at": None,
        }
        | state,
    )
    loaded: Fridge = old.mutate(None)
    return loaded


def test_a_snapshot_from_before_orders_were_born_here_still_loads_and_decides() -> None:
    loaded = from_a_v1_snapshot(
        holds={"soup": 1},
        reservations={
            "o-1": {
                "lines": {"soup": 1},
                "expires_at": DEADLINE,
                "confirmed": False,
                "missing": False,
            }
        },
        closed_orders={"o-2": {"outcome": "cancelled", "at": NOW}},
    )

    assert loaded.held("soup") == 1
    with pytest.raises(IdempotencyKeyReused):  # an open reservation's lines are known
        loaded.reserve("o-1", {"soup": 5}, DEADLINE, NOW)
    assert loaded.reserve("o-2", {"soup": 1}, DEADLINE, NOW) is False  # settled: a repeat
    assert loaded.reserve("o-3", {"soup": 2}, DEADLINE, NOW) is True


def test_a_reservation_replays_to_the_same_promise() -> None:
    fridge = Fridge(
        fridge_id="gym-1", venue_id="kreuzberg-gym", city_id="berlin", timezone="Europe/Berlin"
    )
    fridge.deliver("d-1", {"soup": 3}, TOMORROW, NOW)
    fridge.reserve("o-1", {"soup": 2}, DEADLINE, NOW, terms(soup=2))

    replayed: Fridge | None = None
    for event in fridge.collect_events():
        replayed = event.mutate(replayed)

    assert replayed is not None
    assert replayed.promised("o-1") == fridge.promised("o-1")
    assert replayed.held("soup") == 2


def test_closed_orders_are_forgotten_after_two_days() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}), ("o-2", {"soup": 1}))
    fridge.release("o-1", ReleaseReason.CANCELLED, NOW)
    fridge.release("o-2", ReleaseReason.CANCELLED, NOW + timedelta(days=1))
    fridge.deliver("d-2", {"soup": 5}, LATER, NOW)
    fridge.collect_events()
    then = NOW + CLOSED_ORDERS_KEPT_FOR + timedelta(seconds=1)

    fridge.reserve("o-3", {"soup": 1}, then + timedelta(minutes=10), then)

    assert fridge.reservation_status("o-1") is None  # forgotten
    assert fridge.reservation_status("o-2") == "cancelled"


# ---- count reports -------------------------------------------------------------------------


def test_count_lower_than_on_hand_takes_units_oldest_batch_first() -> None:
    fridge = stocked(soup=2)
    fridge.deliver("d-2", {"soup": 3}, LATER, NOW)
    fridge.collect_events()

    assert fridge.report_counts("r-1", NOW, {"soup": 4}, NOW) is True

    assert names(fridge) == ["CountsReported", "StockAdjusted"]
    adjusted = only_event(fridge, "StockAdjusted")
    assert (adjusted.differences, adjusted.reason, adjusted.report_id) == (
        {"soup": -1},
        "count",
        "r-1",
    )
    assert adjusted.batches == {"soup": {"2025-06-02": -1}}
    assert fridge.shelf("soup") == {TOMORROW: 1, LATER: 3}
    assert fridge.last_report_at == NOW


def test_count_higher_than_on_hand_adds_the_surplus_to_the_newest_batch() -> None:
    fridge = stocked(soup=2)
    fridge.deliver("d-2", {"soup": 3}, LATER, NOW)
    fridge.collect_events()

    fridge.report_counts("r-1", NOW, {"soup": 7}, NOW)

    assert only_event(fridge, "StockAdjusted").differences == {"soup": 2}
    assert only_event(fridge, "StockAdjusted").batches == {"soup": {"2025-06-04": 2}}
    assert fridge.shelf("soup") == {TOMORROW: 2, LATER: 5}


def test_surplus_of_an_unknown_meal_sells_only_on_the_counts_day() -> None:
    fridge = installed()
    taken_at = datetime(2025, 6, 1, 22, 30, tzinfo=UTC)  # 2 June in Berlin

    fridge.report_counts("r-1", taken_at, {"curry": 2}, taken_at)

    assert only_event(fridge, "StockAdjusted").batches == {"curry": {"2025-06-02": 2}}
    assert (fridge.meal_ids(), fridge.shelf("curry")) == (["curry"], {date(2025, 6, 2): 2})


def test_count_equal_to_on_hand_records_only_the_report() -> None:
    fridge = stocked(soup=3, salad=2)

    assert fridge.report_counts("r-1", NOW, {"soup": 3}, NOW) is True

    assert names(fridge) == ["CountsReported"]
    assert only_event(fridge, "CountsReported").counts == {"soup": 3}


def test_meals_a_report_does_not_list_are_left_alone() -> None:
    fridge = stocked(soup=3, salad=2)

    fridge.report_counts("r-1", NOW, {"soup": 0}, NOW)

    assert fridge.on_hand("salad") == 2
    assert fridge.on_hand("soup") == 0
    assert fridge.shelf("soup") == {}


@pytest.mark.parametrize("delta", [timedelta(0), -timedelta(seconds=1)], ids=["equal", "older"])
def test_a_stale_count_report_is_ignored(delta: timedelta) -> None:
    fridge = stocked(soup=3)
    fridge.report_counts("r-1", NOW, {"soup": 3}, NOW)
    fridge.collect_events()

    assert fridge.report_counts("r-2", NOW + delta, {"soup": 0}, NOW) is False

    no_events(fridge)
    assert fridge.on_hand("soup") == 3
    assert fridge.last_report_at == NOW


def test_a_repeated_count_report_is_a_no_op_and_a_reused_report_id_is_refused() -> None:
    fridge = stocked(soup=3)
    fridge.report_counts("r-1", NOW, {"soup": 2}, NOW)
    fridge.collect_events()

    assert fridge.report_counts("r-1", NOW, {"soup": 2}, NOW) is False
    with pytest.raises(AlreadyExists):
        fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)
    with pytest.raises(AlreadyExists):
        fridge.report_counts("r-1", NOW + timedelta(seconds=1), {"soup": 2}, NOW)

    no_events(fridge)
    assert fridge.on_hand("soup") == 2


def test_count_reports_are_remembered_for_two_days() -> None:
    fridge = stocked(soup=3)
    fridge.report_counts("r-1", NOW, {"soup": 2}, NOW)
    later = NOW + REPORTS_KEPT_FOR + timedelta(seconds=1)
    fridge.report_counts("r-2", later, {"soup": 2}, later)

    assert set(fridge.recent_reports) == {"r-2"}


def test_a_fridge_snapshotted_before_reports_were_remembered_takes_reports() -> None:
    fridge = from_a_v1_snapshot()

    assert fridge.report_counts("r-1", NOW, {"soup": 2}, NOW)
    assert fridge.report_counts("r-1", NOW, {"soup": 2}, NOW) is False
    with pytest.raises(AlreadyExists):
        fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)


def test_a_newer_count_report_is_applied() -> None:
    fridge = stocked(soup=3)
    fridge.report_counts("r-1", NOW, {"soup": 3}, NOW)
    fridge.collect_events()

    assert fridge.report_counts("r-2", NOW + timedelta(seconds=1), {"soup": 1}, NOW)

    assert fridge.on_hand("soup") == 1


def test_a_count_report_stamped_in_the_future_is_refused() -> None:
    fridge = stocked(soup=3)

    with pytest.raises(InvalidRequest):
        fridge.report_counts("r-1", NOW + timedelta(minutes=6), {"soup": 0}, NOW)

    no_events(fridge)
    assert fridge.last_report_at is None


@pytest.mark.parametrize(
    ("report_id", "taken_at", "counts"),
    [
        ("r-1", NAIVE, {"soup": 1}),
        ("r-1", NOW, {"soup": -1}),
        ("r-1", NOW, {"soup": True}),
        ("r-1", NOW, {"soup": MOST_UNITS + 1}),
        ("r-1", NOW, {"Soup": 1}),
        ("R 1", NOW, {"soup": 1}),
    ],
)
def test_a_malformed_count_report_is_refused(
    report_id: str, taken_at: datetime, counts: dict[str, Any]
) -> None:
    fridge = stocked(soup=3)

    with pytest.raises(InvalidRequest):
        fridge.report_counts(report_id, taken_at, counts, NOW)

    no_events(fridge)


def test_a_count_report_on_a_retired_fridge_is_refused() -> None:
    fridge = installed()
    fridge.retire()
    fridge.collect_events()

    with pytest.raises(FridgeUnavailable):
        fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)

    no_events(fridge)


def test_count_below_held_names_the_newest_reservations_first() -> None:
    fridge = with_reservations(
        ("o-1", {"soup": 1}), ("o-2", {"soup": 1}), ("o-3", {"soup": 1}), soup=3
    )

    fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)

    assert names(fridge) == ["CountsReported", "StockAdjusted", "ReservedMealsMissing"]
    missing = only_event(fridge, "ReservedMealsMissing")
    assert (missing.meal_id, missing.held, missing.on_hand, missing.order_ids) == (
        "soup",
        3,
        1,
        ["o-3", "o-2"],
    )
    assert fridge.held("soup") == 3  # the order flow releases them; the count does not


def test_each_reservation_is_flagged_missing_only_once() -> None:
    fridge = with_reservations(
        ("o-1", {"soup": 1}), ("o-2", {"soup": 1}), ("o-3", {"soup": 1}), soup=3
    )
    fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)
    fridge.collect_events()

    fridge.report_counts("r-2", NOW + timedelta(minutes=1), {"soup": 1}, NOW)
    assert names(fridge) == ["CountsReported"]
    fridge.collect_events()

    fridge.report_counts("r-3", NOW + timedelta(minutes=2), {"soup": 0}, NOW)
    assert only_event(fridge, "ReservedMealsMissing").order_ids == ["o-1"]


def test_a_shortfall_flags_only_as_many_reservations_as_it_needs() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}), ("o-2", {"soup": 3}), soup=4)

    fridge.report_counts("r-1", NOW, {"soup": 2}, NOW)

    assert only_event(fridge, "ReservedMealsMissing").order_ids == ["o-2"]
    fridge.collect_events()
    fridge.report_counts("r-2", NOW + timedelta(minutes=1), {"soup": 0}, NOW)  # o-1 was not
    assert only_event(fridge, "ReservedMealsMissing").order_ids == ["o-1"]


def test_a_reservation_flagged_for_one_meal_is_not_flagged_again_for_another() -> None:
    fridge = with_reservations(
        ("o-1", {"soup": 1, "salad": 1}), ("o-2", {"soup": 1, "salad": 1}), soup=2, salad=2
    )

    fridge.report_counts("r-1", NOW, {"soup": 1, "salad": 1}, NOW)

    missing = [e for e in fridge.pending_events if type(e).__name__ == "ReservedMealsMissing"]
    assert [(e.meal_id, e.order_ids) for e in missing] == [("salad", ["o-2"])]


def test_count_above_held_flags_nothing() -> None:
    fridge = with_reservations(("o-1", {"soup": 2}), soup=3)

    fridge.report_counts("r-1", NOW, {"soup": 2}, NOW)

    assert names(fridge) == ["CountsReported", "StockAdjusted"]


# ---- life cycle ----------------------------------------------------------------------------


def test_taking_offline_and_back_online_are_idempotent() -> None:
    fridge = installed()

    assert fridge.take_offline("door sensor") is True
    assert fridge.take_offline("door sensor") is False
    assert fridge.bring_online() is True
    assert fridge.bring_online() is False

    assert names(fridge) == ["TakenOffline", "BackOnline"]


def test_retiring_a_fridge_that_holds_reservations_is_refused() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))

    with pytest.raises(InvalidRequest):
        fridge.retire()

    no_events(fridge)
    assert fridge.status == FridgeStatus.ACTIVE


def test_retiring_is_final_and_idempotent() -> None:
    fridge = installed()

    assert fridge.retire() is True
    assert fridge.retire() is False
    with pytest.raises(FridgeUnavailable):
        fridge.bring_online()
    with pytest.raises(FridgeUnavailable):
        fridge.take_offline("moving")

    assert names(fridge) == ["Retired"]


# ---- copies ----------------------------------------------------------------------------------


def public_view(fridge: Fridge) -> Any:
    meals = ("soup", "salad")
    return (
        {m: (fridge.on_hand(m), fridge.held(m), fridge.available(m, TODAY)) for m in meals},
        {o: fridge.promised(o) for o in ("o-1", "o-2", "o-3")},
        fridge.status,
        fridge.version,
    )


def test_a_copy_evolves_on_its_own_and_leaves_the_original_as_it_was() -> None:
    fridge = with_reservations(("o-1", {"soup": 1}))
    fridge.reserve("o-2", {"salad": 1}, DEADLINE, NOW, terms(salad=1))
    fridge.release("o-2", ReleaseReason.CANCELLED, NOW)
    fridge.collect_events()
    before = public_view(fridge)

    twin = copy.deepcopy(fridge)
    assert public_view(twin) == before
    twin.confirm("o-1")
    twin.pick_up("o-1", NOW)
    twin.reserve("o-3", {"soup": 2}, DEADLINE, NOW, terms(soup=2))
    twin.deliver("d-2", {"salad": 4}, LATER, NOW)
    twin.report_counts("r-1", NOW, {"soup": 1}, NOW)

    assert public_view(fridge) == before
    assert fridge.pending_events == []
    assert fridge.reserve("o-3", {"soup": 1}, DEADLINE, NOW) is True  # unknown to the original
    assert twin.held("soup") == 2 and fridge.held("soup") == 2
    assert twin.on_hand("salad") == 6 and fridge.on_hand("salad") == 2
