"""The shelf's rules, which the fridge evolves by and the stock views apply to their rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.shelf import local_day, surplus_batch, taken

MON, TUE, WED = "2025-06-02", "2025-06-03", "2025-06-04"


def test_units_come_out_of_the_oldest_batch_first() -> None:
    assert taken({WED: 5, MON: 2, TUE: 3}, 4) == {MON: 2, TUE: 2}


def test_a_sale_takes_fresh_units_before_expired_ones() -> None:
    assert taken({MON: 2, TUE: 3}, 2, fresh_from=TUE) == {TUE: 2}
    assert taken({MON: 2, TUE: 3}, 4, fresh_from=TUE) == {TUE: 3, MON: 1}


def test_no_more_is_taken_than_the_shelf_holds() -> None:
    assert taken({MON: 2}, 5) == {MON: 2}
    assert taken({}, 3) == {}


def test_a_surplus_joins_the_newest_batch_or_sells_only_on_the_count_day() -> None:
    assert surplus_batch({MON: 1, WED: 1}, date(2025, 6, 1)) == WED
    assert surplus_batch({}, date(2025, 6, 1)) == "2025-06-01"


def test_the_local_day_is_the_fridges_not_utcs() -> None:
    late = datetime(2025, 6, 1, 23, 30, tzinfo=UTC)
    assert local_day(late, "Europe/Berlin") == date(2025, 6, 2)
    assert local_day(late, "America/New_York") == date(2025, 6, 1)


@given(
    st.dictionaries(st.sampled_from([MON, TUE, WED]), st.integers(1, 20)),
    st.integers(0, 80),
    st.sampled_from(["", MON, TUE, WED]),
)
def test_what_is_taken_is_what_was_asked_or_all_there_was(
    batches: dict[str, int], units: int, fresh_from: str
) -> None:
    took = taken(batches, units, fresh_from)
    assert sum(took.values()) == min(units, sum(batches.values()))
    assert all(0 < n <= batches[best_before] for best_before, n in took.items())
