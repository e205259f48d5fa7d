"""The kitchen's plan for a date, after two scripted weeks of one fridge, number by number.

A fridge in Berlin sells soup through the app and to walk-up buyers (seen only as counts lower
than it expected), throws away what passes its best-before (the expiry scheduler at local
midnight), and is delivered to. The plan for Monday 14 December is made from the two Mondays
before it; a delivery that morning is then shown against it.

    Monday 30 Nov: 3 picked up through the app, 2 walk-ups (counted 5 of the 7 expected)
    Tuesday 1 Dec: 1 walk-up (not a Monday: not in the plan)
    Wednesday 2 Dec: 4 thrown away (best-before 1 Dec)
    Monday 7 Dec: 2 thrown away at midnight (best-before 6 Dec), 4 picked up, 1 walk-up
    Sunday 13 Dec: 3 soups best-before 15 Dec and 2 best-before 13 Dec on the shelf, 1 held
    Plan for Monday 14 Dec: sold 10 on 2 Mondays -> 5 a Monday -> target 5; wasted 2 on 2
    Mondays -> 1 expected; sellable 3 fresh less 1 held = 2; to deliver 5 + 1 - 2 = 4.
    Delivered 6 that Monday morning: 2 over, none short; the plan for the day stays 4.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from application.expiry import Expiry
from ops.root import WriteSide
from tests.conftest import FakeClock, unique
from tests.e2e.test_cli import run
from tests.integration.projection_fixtures import OpenModels, OpenReads, models, reads
from tests.integration.projection_world import catch_up

__all__ = ["models", "reads"]


def at(clock: FakeClock, day: int, hour: int, month: int = 12) -> None:
    clock.now = datetime(2026, month, day, hour, 0, tzinfo=UTC)


def test_the_plan_for_a_date_from_a_scripted_fortnight(
    side: WriteSide, clock: FakeClock, models: OpenModels, reads: OpenReads
) -> None:
    at(clock, 29, 12, month=11)
    city, venue, fridge, soup = unique("city"), unique("venue"), unique("fridge"), unique("soup")
    side.catalogue.register_city(city, "Berlin", "Europe/Berlin")
    side.catalogue.register_venue(venue, city, "Gym")
    side.catalogue.install_fridge(fridge, venue)
    side.catalogue.register_meal(soup, "Soup", "6.50", "EUR")
    expiry = Expiry(side.store, side.writer, clock)
    sold = 0

    def sell(units: int) -> None:
        nonlocal sold
        for _ in range(units):
            sold += 1
            placed = side.ordering.place("ann", f"order-{sold}", fridge, {soup: 1})
            side.ordering.ensure_order(placed.order_id, fridge)
            side.ordering.authorise_payment(placed.order_id, f"pay-{sold}")
            side.ordering.pick_up(fridge, placed.order_id)

    def counted(units: int) -> None:
        side.stock.report_counts(fridge, unique("report"), clock.now, {soup: units})

    at(clock, 30, 7, month=11)  # Monday 30 Nov, 08:00 in Berlin
    side.stock.deliver(fridge, "d1", {soup: 10}, date(2026, 12, 1))
    at(clock, 30, 11, month=11)
    sell(3)
    at(clock, 30, 17, month=11)
    counted(5)  # 7 expected: 2 walk-ups
    at(clock, 1, 11)  # Tuesday
    counted(4)  # 1 walk-up, on a Tuesday
    at(clock, 1, 23)  # Wednesday 00:00 in Berlin
    expiry.tick()  # 4 thrown away
    at(clock, 6, 9)  # Sunday 6 Dec
    side.stock.deliver(fridge, "d2", {soup: 2}, date(2026, 12, 6))
    at(clock, 6, 23)  # Monday 7 Dec 00:00 in Berlin
    expiry.tick()  # 2 thrown away, on a Monday
    at(clock, 7, 7)
    side.stock.deliver(fridge, "d3", {soup: 8}, date(2026, 12, 8))
    at(clock, 7, 11)
    sell(4)
    at(clock, 7, 17)
    counted(3)  # 4 expected: 1 walk-up
    at(clock, 8, 23)
    expiry.tick()  # 3 thrown away on Wednesday 9 Dec
    at(clock, 13, 9)  # Sunday 13 Dec
    side.stock.deliver(fridge, "d4", {soup: 3}, date(2026, 12, 15))
    side.stock.deliver(fridge, "d5", {soup: 2}, date(2026, 12, 13))
    at(clock, 13, 19)
    side.ordering.place("bob", "held", fridge, {soup: 1})  # unpaid: held

    db = models("refill_plan")
    read = reads({"refill_plan": db}).refill_plan
    catch_up(side, db, "refill_plan")
    (line,) = read.plan_for(clock.now, date(2026, 12, 14), weeks=2).value
    assert (line.fridge_id, line.meal_id, line.day) == (fridge, soup, date(2026, 12, 14))
    assert line.sold == 10
    assert line.sold_by_weekday == 5.0
    assert line.target == 5
    assert line.expected_waste == 1
    assert (line.sellable, line.held, line.expiring) == (2, 1, 2)
    assert line.to_deliver == 4
    assert (line.delivered, line.short, line.over) == (0, 4, 0)

    at(clock, 13, 23)  # Monday 14 Dec 00:00 in Berlin: the 2 of the 13th go
    expiry.tick()
    at(clock, 14, 7)
    side.stock.deliver(fridge, "d6", {soup: 6}, date(2026, 12, 15))
    catch_up(side, db, "refill_plan")
    (after,) = read.plan_for(clock.now, date(2026, 12, 14), weeks=2).value
    assert (after.target, after.expected_waste, after.sellable, after.to_deliver) == (5, 1, 2, 4)
    assert (after.delivered, after.short, after.over, after.expiring) == (6, 0, 2, 0)

    # a target of two days' sales: 10, so 10 + 1 - 2 = 9 to deliver, 3 short of the 6
    (doubled,) = read.plan_for(clock.now, date(2026, 12, 14), weeks=2, cover=2.0).value
    assert (doubled.target, doubled.to_deliver, doubled.short, doubled.over) == (10, 9, 3, 0)

    # one week of history: only Monday 7 Dec (5 sold, 2 wasted)
    (one_week,) = read.plan_for(clock.now, date(2026, 12, 14), weeks=1).value
    assert (one_week.target, one_week.expected_waste, one_week.to_deliver) == (5, 2, 5)

    if side.settings.store == "sqlite":  # the kitchen's export, as its systems take it
        exported = run(
            ["kitchen", "plan", "--date", "2026-12-14", "--format", "csv", "--weeks", "2"],
            FARMACY_DATA_DIR=str(side.settings.data_dir),
        )
        assert exported.returncode == 0, exported.stderr
        rows = list(csv.DictReader(io.StringIO(exported.stdout)))
        # the command plans with the real clock, so which Mondays are history yet is the
        # real date's to say: it exports what the query answers at the same moment
        (now,) = read.plan_for(datetime.now(UTC), date(2026, 12, 14), weeks=2).value
        assert rows == [
            {
                "date": "2026-12-14",
                "fridge_id": fridge,
                "venue_id": venue,
                "meal_id": soup,
                "sold_by_weekday": str(now.sold_by_weekday),
                "target": str(now.target),
                "expected_waste": str(now.expected_waste),
                "sellable": "2",
                "held": "1",
                "expiring": "0",
                "to_deliver": str(now.to_deliver),
                "delivered": "6",
                "short": str(now.short),
                "over": str(now.over),
            }
        ]
