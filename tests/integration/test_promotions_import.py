"""Operators import promotions from CSV, XLSX and ODS files; orders are priced by them.

Given a world (Berlin, a venue, a fridge, soup at 6.50 and salad at 8.50), when a sheet is
imported, then every bad row is named (row, column, reason) and nothing is recorded, or the
whole sheet is recorded once; orders placed while a campaign runs pay its price, from its
first second to its last, and keep that price afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from eventsourcing.utils import get_topic

from application.promotions import SheetRejected
from domain.promotions import PromotionSheet
from interfaces.spreadsheets import read_sheet
from ops.root import WriteSide
from tests.conftest import FakeClock, unique
from tests.integration.world import World, make_world
from tests.sheets import HEADER, WRITERS, Formula

FORMATS = sorted(WRITERS)
# 2026-12-10 08:00 in Berlin (CET, UTC+1) is 07:00 UTC
STARTS_UTC = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
ENDS_UTC = datetime(2026, 12, 10, 19, 0, tzinfo=UTC)


@pytest.fixture
def world(side: WriteSide, clock: FakeClock) -> World:
    clock.now = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)
    return make_world(side, soup_units=50, salad_units=50)


def sheet_events(side: WriteSide) -> int:
    topic = get_topic(PromotionSheet.Imported)
    head = side.store.recorder.max_notification_id() or 0
    return len(side.store.recorder.select_notifications(1, head + 1, topics=[topic]))


def soup_price(side: WriteSide, world: World, at: datetime) -> Decimal:
    lines, _ = side.prices.price({world.soup: 1}, world.fridge_id, at)
    return lines[0]["unit_price"]


@pytest.mark.parametrize("kind", FORMATS)
def test_a_good_sheet_prices_orders_from_the_second_it_starts_to_the_second_it_ends(
    side: WriteSide, world: World, clock: FakeClock, kind: str
) -> None:
    rows = [
        HEADER,
        [
            "winter",
            world.soup,
            f"city:{world.city_id}",
            20,
            None,
            datetime(2026, 12, 10, 8, 0),
            "2026-12-10 20:00",
        ],
        [
            "winter",
            world.salad,
            f"venue:{world.venue_id}",
            None,
            "7.25",
            "2026-12-10 08:00",
            "2026-12-10 20:00",
        ],
    ]
    done = side.promotions.import_sheet(read_sheet(f"winter.{kind}", WRITERS[kind](rows)))
    assert done.created and done.campaign_ids == ["winter"] and done.promotions == 2

    second = timedelta(seconds=1)
    assert soup_price(side, world, STARTS_UTC - second) == Decimal("6.50")
    assert soup_price(side, world, STARTS_UTC) == Decimal("5.20")  # 6.50 less 20 %
    assert soup_price(side, world, ENDS_UTC - second) == Decimal("5.20")
    assert soup_price(side, world, ENDS_UTC) == Decimal("6.50")

    clock.now = STARTS_UTC
    placed = side.ordering.place("ann", unique("key"), world.fridge_id, {world.salad: 2})
    assert placed.lines[0]["unit_price"] == Decimal("7.25")
    assert placed.total == Decimal("14.50")
    clock.now = ENDS_UTC + timedelta(hours=1)
    after = side.ordering.place("bob", unique("key"), world.fridge_id, {world.salad: 1})
    assert after.total == Decimal("8.50")
    order = side.ordering.ensure_order(placed.order_id, world.fridge_id)
    assert order.total == Decimal("14.50")  # priced when placed, kept after the campaign


def test_the_same_file_again_changes_nothing(side: WriteSide, world: World) -> None:
    content = WRITERS["csv"](
        [HEADER, ["c1", world.soup, f"city:{world.city_id}", 10, None, "2026-12-10", "2026-12-11"]]
    )
    first = side.promotions.import_sheet(read_sheet("a.csv", content))
    again = side.promotions.import_sheet(read_sheet("renamed.csv", content))
    assert first.created and not again.created
    assert again.sheet_hash == first.sheet_hash and again.promotions == 1
    assert sheet_events(side) == 1


@pytest.mark.parametrize("kind", FORMATS)
def test_every_bad_row_is_named_and_nothing_of_the_sheet_is_recorded(
    side: WriteSide, world: World, kind: str
) -> None:
    city = f"city:{world.city_id}"
    rows = [
        HEADER,
        ["ok", world.soup, city, 10, None, "2026-12-10 08:00", "2026-12-10 20:00"],  # 2
        ["types", world.soup, city, "lots", None, "2026-12-10 08:00", "2026-12-10 20:00"],  # 3
        ["ghost", "no-such-meal", city, 10, None, "2026-12-10 08:00", "2026-12-10 20:00"],  # 4
        ["late", world.salad, city, 10, None, "2026-12-10 20:00", "2026-12-10 08:00"],  # 5
        ["ok", world.soup, city, 15, None, "2026-12-10 19:00", "2026-12-10 22:00"],  # 6
        ["calc", world.salad, city, None, Formula("6.5*0.9", 5.85), "2026-12-11", "2026-12-12"],
        ["where", world.salad, "city:atlantis", 10, None, "2026-12-10", "2026-12-11"],  # 8
        ["when", world.salad, city, 10, None, "next tuesday", "2026-12-11"],  # 9
        ["both", world.salad, city, 10, "5.00", "2026-12-10", "2026-12-11"],  # 10
        ["dear", world.salad, city, None, "9.00", "2026-12-10", "2026-12-11"],  # 11
    ]
    with pytest.raises(SheetRejected) as rejected:
        side.promotions.import_sheet(read_sheet(f"bad.{kind}", WRITERS[kind](rows)))
    found = {(p.row, p.column) for p in rejected.value.problems}
    assert found == {
        (3, "percent_off"),
        (4, "meal"),
        (5, "ends_at"),
        (6, "starts_at"),  # overlaps row 2: the same campaign, meal and city
        (7, "fixed_price"),  # a formula
        (8, "scope"),
        (9, "starts_at"),
        (10, "percent_off"),
        (11, "fixed_price"),  # not below the meal's 8.50
    }
    reasons = {p.row: p.reason for p in rejected.value.problems}
    assert "no meal 'no-such-meal'" in reasons[4]
    assert "overlaps row 2" in reasons[6]
    assert "formula" in reasons[7]
    assert sheet_events(side) == 0
    assert soup_price(side, world, STARTS_UTC + timedelta(hours=1)) == Decimal("6.50")


@pytest.mark.parametrize("kind", FORMATS)
def test_an_empty_sheet_is_refused(side: WriteSide, world: World, kind: str) -> None:
    for rows in ([], [HEADER]):
        with pytest.raises(SheetRejected) as rejected:
            side.promotions.import_sheet(read_sheet(f"empty.{kind}", WRITERS[kind](rows)))
        assert rejected.value.problems[0].reason in (
            "the sheet is empty",
            "the sheet has no promotions",
        )
    assert sheet_events(side) == 0


def test_overlapping_campaigns_give_the_best_price_and_a_zone_column_is_honoured(
    side: WriteSide, world: World
) -> None:
    rows = [
        [*HEADER, "timezone"],
        ["city-week", world.soup, f"city:{world.city_id}", 10, None, "2026-12-10", "2026-12-17"],
        # 09:00-10:00 in New York is 14:00-15:00 UTC in December
        [
            "happy-hour",
            world.soup,
            f"venue:{world.venue_id}",
            None,
            "4.00",
            "2026-12-10 09:00",
            "2026-12-10 10:00",
            "America/New_York",
        ],
    ]
    side.promotions.import_sheet(read_sheet("two.csv", WRITERS["csv"](rows)))
    day = datetime(2026, 12, 10, tzinfo=UTC)
    assert soup_price(side, world, day + timedelta(hours=13, minutes=59)) == Decimal("5.85")
    assert soup_price(side, world, day + timedelta(hours=14)) == Decimal("4.00")
    assert soup_price(side, world, day + timedelta(hours=15)) == Decimal("5.85")
    other_venue = unique("venue")
    side.catalogue.register_venue(other_venue, world.city_id, "Office")
    lines, _ = side.prices.price({world.soup: 1}, None, day + timedelta(hours=14))
    assert lines[0]["unit_price"] == Decimal("6.50")  # no fridge named: the regular price


def test_a_newer_sheet_for_a_campaign_replaces_it_from_its_own_time_on(
    side: WriteSide, world: World, clock: FakeClock
) -> None:
    city = f"city:{world.city_id}"
    first = [HEADER, ["winter", world.soup, city, 10, None, "2026-12-01", "2027-01-01"]]
    second = [HEADER, ["winter", world.salad, city, 50, None, "2026-12-01", "2027-01-01"]]
    clock.now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    side.promotions.import_sheet(read_sheet("v1.csv", WRITERS["csv"](first)))
    replaced_at = clock.now = datetime(2026, 12, 12, 12, 0, tzinfo=UTC)
    side.promotions.import_sheet(read_sheet("v2.csv", WRITERS["csv"](second)))

    before = replaced_at - timedelta(seconds=1)
    assert soup_price(side, world, before) == Decimal("5.85")  # v1 still held then
    assert soup_price(side, world, replaced_at) == Decimal("6.50")  # v2 dropped the soup
    salad, _ = side.prices.price({world.salad: 1}, world.fridge_id, replaced_at)
    assert salad[0]["unit_price"] == Decimal("4.25")
    salad_before, _ = side.prices.price({world.salad: 1}, world.fridge_id, before)
    assert salad_before[0]["unit_price"] == Decimal("8.50")
