"""The fulfilment flow's decisions, pure: given an event, then the steps it calls for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from application.fulfilment import (
    GiveUp,
    KeepPickupDeadline,
    MakeReady,
    OpenOrder,
    RecordCancel,
    RecordPickup,
    ReleaseMeals,
    RequestPayment,
    SettleMoney,
    react,
)
from domain.fridge import Fridge
from domain.order import NoShowPolicy, Order, OrderLine, OrderTerms
from domain.values import ReleaseReason

NOW = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
DUE = NOW + timedelta(minutes=10)
ORDER_ID = "6f72a152-aa95-59ee-86db-dcb7a5fa41be"
LINES = [OrderLine(meal_id="soup", quantity=2, unit_price=Decimal("6.50"))]


def placed_order() -> Order:
    return Order(
        order_id=ORDER_ID,
        customer_id="ana",
        fridge_id="gym-1",
        venue_id="gym",
        city_id="berlin",
        lines=LINES,
        total=Decimal("13.00"),
        currency="EUR",
        placed_at=NOW,
        payment_due_by=DUE,
        request_fingerprint="f",
    )


def stocked_fridge() -> Fridge:
    fridge = Fridge(fridge_id="gym-1", venue_id="gym", city_id="berlin", timezone="Europe/Berlin")
    fridge.deliver("d-1", {"soup": 3}, date(2025, 6, 2), NOW)
    fridge.collect_events()
    return fridge


def last_event(aggregate: Order | Fridge) -> object:
    return aggregate.collect_events()[-1]


def test_a_reservation_with_terms_opens_its_order() -> None:
    fridge = stocked_fridge()
    terms = OrderTerms(
        customer_id="ana", lines=LINES, total=Decimal("13.00"), currency="EUR", fingerprint="f"
    )
    fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW, terms)

    (step,) = react(last_event(fridge))

    assert isinstance(step, OpenOrder)
    assert step.order_id == ORDER_ID
    assert step.reserved.fridge_stream == fridge.id
    assert (step.reserved.terms, step.reserved.placed_at, step.reserved.payment_due_by) == (
        terms,
        NOW,
        DUE,
    )


def test_a_reservation_from_before_orders_were_born_in_the_fridge_calls_for_nothing() -> None:
    fridge = stocked_fridge()
    fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW)

    assert react(last_event(fridge)) == []


def test_a_placed_order_asks_for_its_money() -> None:
    assert react(last_event(placed_order())) == [
        RequestPayment(ORDER_ID, Decimal("13.00"), "EUR", "gym-1")
    ]


def test_an_authorised_payment_makes_the_order_ready() -> None:
    order = placed_order()
    order.pay("psp-1")
    assert react(last_event(order)) == [MakeReady(ORDER_ID, "psp-1")]


def test_an_order_that_ends_unpaid_puts_its_meals_back() -> None:
    for end, reason in (
        (lambda o: o.cancel("customer"), ReleaseReason.CANCELLED),
        (lambda o: o.fail_payment("declined"), ReleaseReason.PAYMENT_FAILED),
        (lambda o: o.expire(DUE), ReleaseReason.EXPIRED),
    ):
        order = placed_order()
        end(order)
        assert react(last_event(order)) == [ReleaseMeals(ORDER_ID, reason)]


def test_a_refund_puts_the_meals_back_and_returns_the_money() -> None:
    order = placed_order()
    order.pay("psp-1")
    order.refund("meals missing")
    assert react(last_event(order)) == [
        ReleaseMeals(ORDER_ID, ReleaseReason.REFUNDED),
        SettleMoney(ORDER_ID),
    ]


def test_a_pickup_window_is_kept_and_its_close_releases_and_settles() -> None:
    order = placed_order()
    order.pay("psp-1")
    order.make_ready(DUE + timedelta(hours=2))
    assert react(last_event(order)) == [KeepPickupDeadline(ORDER_ID, DUE + timedelta(hours=2))]
    order.not_collected(DUE + timedelta(hours=2), NoShowPolicy.CHARGE)
    assert react(last_event(order)) == [
        ReleaseMeals(ORDER_ID, ReleaseReason.NOT_COLLECTED),
        SettleMoney(ORDER_ID),
    ]


def test_money_moves_after_a_pickup_and_after_a_late_authorisation() -> None:
    order = placed_order()
    order.pay("psp-1")
    order.make_ready()
    order.pick_up(NOW)
    assert react(last_event(order)) == [SettleMoney(ORDER_ID)]
    late = placed_order()
    late.expire(DUE)
    late.pay("psp-late")
    assert react(last_event(late)) == [SettleMoney(ORDER_ID)]


def test_meals_missing_from_a_count_give_up_each_named_order() -> None:
    fridge = stocked_fridge()
    fridge.reserve("o-1", {"soup": 2}, DUE, NOW)
    fridge.reserve("o-2", {"soup": 1}, DUE, NOW)
    fridge.collect_events()
    fridge.report_counts("r-1", NOW, {"soup": 1}, NOW)

    steps = react(last_event(fridge))

    assert steps == [GiveUp("o-2", str(fridge.id)), GiveUp("o-1", str(fridge.id))]


def test_a_pickup_at_the_fridge_completes_the_order() -> None:
    fridge = stocked_fridge()
    fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW)
    fridge.confirm(ORDER_ID)
    fridge.pick_up(ORDER_ID, NOW)
    assert react(last_event(fridge)) == [RecordPickup(ORDER_ID)]


def test_events_the_flow_does_not_follow_call_for_nothing() -> None:
    order = placed_order()
    order.pay("psp-1")
    order.make_ready()  # ready before pickup windows existed: no deadline to keep
    assert react(last_event(order)) == []
    fridge = stocked_fridge()
    fridge.deliver("d-2", {"soup": 1}, date(2025, 6, 2), NOW)
    assert react(last_event(fridge)) == []


def test_a_reservation_cancelled_at_the_fridge_moves_its_order_on() -> None:
    fridge = stocked_fridge()
    fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW)
    fridge.release(ORDER_ID, ReleaseReason.CANCELLED, NOW)
    assert react(last_event(fridge)) == [RecordCancel(ORDER_ID, str(fridge.id))]


def test_meals_released_for_any_other_reason_call_for_nothing_more() -> None:
    for reason in (ReleaseReason.EXPIRED, ReleaseReason.PAYMENT_FAILED, ReleaseReason.REFUNDED):
        fridge = stocked_fridge()
        fridge.reserve(ORDER_ID, {"soup": 2}, DUE, NOW)
        fridge.release(ORDER_ID, reason, NOW)
        assert react(last_event(fridge)) == [], reason
