"""The promotion rules, pure: reading a row, and which price is in force when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.promotions import (
    Campaigns,
    Places,
    Promotion,
    PromotionSheet,
    RowRefused,
    check_row,
    overlapping,
)

PLACES = Places(
    meal_prices={"soup": Decimal("6.50"), "salad": Decimal("8.50")},
    city_zones={"berlin": "Europe/Berlin", "santiago": "America/Santiago"},
    venue_zones={"gym": "Europe/Berlin"},
)


def row(**cells: object) -> dict[str, object]:
    base: dict[str, object] = {
        "campaign": "winter",
        "meal": "soup",
        "scope": "city:berlin",
        "percent_off": "10",
        "fixed_price": None,
        "starts_at": "2026-12-10 08:00",
        "ends_at": "2026-12-10 20:00",
    }
    return {**base, **cells}


def test_local_times_are_in_the_scope_city_zone_unless_the_row_names_one() -> None:
    berlin = check_row(row(), PLACES)  # type: ignore[arg-type]
    assert berlin["starts_at"] == "2026-12-10T07:00:00+00:00"
    # Santiago in December is on summer time, UTC-3
    chile = check_row(row(scope="city:santiago"), PLACES)  # type: ignore[arg-type]
    assert chile["starts_at"] == "2026-12-10T11:00:00+00:00"
    tokyo = check_row(row(timezone="Asia/Tokyo"), PLACES)  # type: ignore[arg-type]
    assert tokyo["starts_at"] == "2026-12-09T23:00:00+00:00"
    offset = check_row(row(starts_at="2026-12-10T08:00:00+02:00"), PLACES)  # type: ignore[arg-type]
    assert offset["starts_at"] == "2026-12-10T06:00:00+00:00"


@pytest.mark.parametrize(
    ("cells", "column"),
    [
        ({"percent_off": True}, "percent_off"),
        ({"percent_off": "0"}, "percent_off"),
        ({"percent_off": "100"}, "percent_off"),
        ({"percent_off": None}, "percent_off"),
        ({"fixed_price": "5.001", "percent_off": None}, "fixed_price"),
        ({"meal": "Soup!"}, "meal"),
        ({"campaign": 7}, "campaign"),
        ({"scope": "berlin"}, "scope"),
        ({"scope": "venue:nowhere"}, "scope"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"ends_at": None}, "ends_at"),
        ({"ends_at": "2026-12-10 08:00"}, "ends_at"),
    ],
)
def test_a_bad_cell_names_its_column(cells: dict[str, object], column: str) -> None:
    with pytest.raises(RowRefused) as refused:
        check_row(row(**cells), PLACES)  # type: ignore[arg-type]
    assert refused.value.column == column


def test_rows_of_one_campaign_may_follow_each_other_but_not_overlap() -> None:
    first = check_row(row(), PLACES)  # type: ignore[arg-type]
    follows = check_row(row(starts_at="2026-12-10 20:00", ends_at="2026-12-11 08:00"), PLACES)  # type: ignore[arg-type]
    overlaps = check_row(row(starts_at="2026-12-10 19:59", ends_at="2026-12-11 08:00"), PLACES)  # type: ignore[arg-type]
    other_campaign = check_row(row(campaign="flash", starts_at="2026-12-10 12:00"), PLACES)  # type: ignore[arg-type]
    assert overlapping([(2, first), (3, follows), (4, other_campaign)]) == []
    problems = overlapping([(2, first), (3, overlaps)])
    assert [(p.row, p.column) for p in problems] == [(3, "starts_at")]


T0 = datetime(2026, 12, 10, 7, 0, tzinfo=UTC)


def promotion(campaign: str, percent: str | None, fixed: str | None, hours: int) -> Promotion:
    return Promotion(
        campaign_id=campaign,
        meal_id="soup",
        scope="city",
        scope_id="berlin",
        percent_off=percent,
        fixed_price=fixed,
        starts_at=T0.isoformat(),
        ends_at=(T0 + timedelta(hours=hours)).isoformat(),
    )


def imported(at: datetime, *promotions: Promotion) -> PromotionSheet.Imported:
    sheet = PromotionSheet(
        sheet_hash=f"h{at.timestamp()}",
        name="s",
        imported_at=at,
        campaign_ids=sorted({p["campaign_id"] for p in promotions}),
        promotions=list(promotions),
    )
    event = sheet.collect_events()[0]
    assert isinstance(event, PromotionSheet.Imported)
    return event


offers = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.one_of(
            st.decimals(min_value="0.5", max_value="99.5", places=1).map(lambda d: (str(d), None)),
            st.decimals(min_value="0.00", max_value="6.49", places=2).map(lambda d: (None, str(d))),
        ),
        st.integers(min_value=1, max_value=48),
    ),
    max_size=6,
)


@given(offers, st.integers(min_value=-2, max_value=50))
def test_the_best_price_is_the_lowest_in_force_and_never_above_the_regular(
    rows: list[tuple[str, tuple[str | None, str | None], int]], hour: int
) -> None:
    campaigns = Campaigns()
    # one sheet per campaign name, so a later row of a campaign replaces the earlier
    latest: dict[str, Promotion] = {}
    for n, (campaign, (percent, fixed), hours) in enumerate(rows):
        p = promotion(campaign, percent, fixed, hours)
        campaigns.take(imported(T0 - timedelta(days=1, minutes=len(rows) - n), p))
        latest[campaign] = p
    at = T0 + timedelta(hours=hour)
    regular = Decimal("6.50")
    expected = regular
    for p in latest.values():
        if T0 <= at < datetime.fromisoformat(p["ends_at"]):
            price = (
                Decimal(p["fixed_price"])
                if p["fixed_price"] is not None
                # a percentage is rounded to the cent, half up (6.305 -> 6.31)
                else (regular * (100 - Decimal(p["percent_off"] or 0)) / 100).quantize(
                    Decimal("0.01"), ROUND_HALF_UP
                )
            )
            expected = min(expected, price)
    assert campaigns.best_price("soup", regular, "gym", "berlin", at) == expected
    assert campaigns.best_price("soup", regular, "gym", "lisbon", at) == regular


def test_a_replaced_campaign_holds_until_the_second_its_replacement_was_imported() -> None:
    campaigns = Campaigns()
    campaigns.take(imported(T0 - timedelta(days=1), promotion("a", "10", None, 24)))
    swapped_at = T0 + timedelta(hours=2)
    campaigns.take(imported(swapped_at, promotion("a", "50", None, 24)))
    regular = Decimal("6.50")
    assert campaigns.best_price("soup", regular, "gym", "berlin", T0) == Decimal("5.85")
    assert campaigns.best_price(
        "soup", regular, "gym", "berlin", swapped_at - timedelta(seconds=1)
    ) == Decimal("5.85")
    assert campaigns.best_price("soup", regular, "gym", "berlin", swapped_at) == Decimal("3.25")
    assert campaigns.changes("soup", T0) == swapped_at
