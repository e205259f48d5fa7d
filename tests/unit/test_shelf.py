"""The shelf's rules, which the fridge evolves by and the stock views apply to their rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.shelf import (
    Shelf,
    after_move,
    available,
    counted,
    is_fresh,
    local_day,
    sold,
    surplus_batch,
    taken,
)

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


# ---- the shelf a fridge holds: given batches, when a change, then what it holds ------------


def shelf(**batches: dict[str, int]) -> Shelf:
    return Shelf({meal_id: dict(by_date) for meal_id, by_date in batches.items()})


def test_a_delivery_adds_to_its_best_before_batch() -> None:
    given = shelf(soup={MON: 2})

    given.move("soup", {MON: 1})
    given.move("soup", {WED: 4})

    assert given.by_best_before("soup") == {date(2025, 6, 2): 3, date(2025, 6, 4): 4}
    assert given.on_hand("soup") == 7


def test_units_on_hand_on_a_day_are_only_those_still_fresh() -> None:
    given = shelf(soup={MON: 2, TUE: 3}, salad={WED: 1})

    assert given.on_hand("soup", date(2025, 6, 3)) == 3
    assert given.on_hand("soup", date(2025, 6, 2)) == 5
    assert given.on_hand("soup") == 5
    assert given.on_hand("curry") == 0


def test_a_sale_says_which_batches_lose_oldest_fresh_one_first() -> None:
    given = shelf(soup={MON: 2, TUE: 3, WED: 1})

    assert given.selling("soup", 3, date(2025, 6, 1)) == {MON: -2, TUE: -1}
    assert given.selling("soup", 4, date(2025, 6, 3)) == {TUE: -3, WED: -1}
    assert given.selling("soup", 5, date(2025, 6, 4)) == {WED: -1, MON: -2, TUE: -2}
    assert given.selling("curry", 1, date(2025, 6, 1)) == {}


def test_what_was_taken_is_gone_and_an_emptied_meal_leaves_nothing_behind() -> None:
    given = shelf(soup={MON: 2, TUE: 3})

    given.move("soup", {MON: -2, TUE: -1})
    assert given.by_best_before("soup") == {date(2025, 6, 3): 2}

    given.move("soup", {TUE: -2})
    assert given.by_best_before("soup") == {}
    assert given.meal_ids() == set()


def test_a_count_shortfall_is_taken_oldest_first_and_a_surplus_joins_the_newest_batch() -> None:
    given = shelf(soup={MON: 2, TUE: 3})
    count_day = date(2025, 6, 1)

    assert given.counting("soup", -3, count_day) == {MON: -2, TUE: -1}
    assert given.counting("soup", -9, count_day) == {MON: -2, TUE: -3}
    assert given.counting("soup", 4, count_day) == {TUE: 4}
    assert given.counting("salad", 2, count_day) == {"2025-06-01": 2}


def test_batches_past_their_best_before_are_named_and_removed() -> None:
    given = shelf(soup={MON: 2, TUE: 3}, salad={MON: 1})

    past = given.past(date(2025, 6, 3))
    assert past == [
        {"meal_id": "salad", "best_before": MON, "quantity": 1},
        {"meal_id": "soup", "best_before": MON, "quantity": 2},
    ]
    for batch in past:
        given.remove(batch["meal_id"], batch["best_before"])

    assert given.past(date(2025, 6, 3)) == []
    assert given.meal_ids() == {"soup"}
    assert given.on_hand("soup") == 3


def test_a_copied_shelf_changes_on_its_own() -> None:
    given = shelf(soup={MON: 2})

    copied = given.copy()
    copied.move("soup", {MON: -1})
    copied.move("salad", {TUE: 4})

    assert given.by_best_before("soup") == {date(2025, 6, 2): 2}
    assert given.meal_ids() == {"soup"}
    assert copied.on_hand("soup") == 1


def test_what_a_count_and_a_sale_move_is_said_batch_by_batch_as_views_apply_it() -> None:
    batches = {MON: 2, TUE: 3}

    assert counted(batches, -3, date(2025, 6, 1)) == {MON: -2, TUE: -1}
    assert counted(batches, 2, date(2025, 6, 1)) == {TUE: 2}
    assert counted({}, 2, date(2025, 6, 1)) == {"2025-06-01": 2}
    assert sold(batches, 4, date(2025, 6, 3)) == {TUE: -3, MON: -1}
    assert sold({}, 1, date(2025, 6, 3)) == {}


def test_a_batch_is_fresh_up_to_and_including_its_best_before_day() -> None:
    assert is_fresh(TUE, MON) and is_fresh(TUE, TUE)
    assert not is_fresh(MON, TUE)


def test_available_is_fresh_less_held_and_never_below_zero() -> None:
    assert available(fresh=5, held=2) == 3
    assert available(fresh=2, held=5) == 0  # a count found fewer than reservations hold


def test_a_move_that_empties_a_batch_drops_it() -> None:
    assert after_move({MON: 2, TUE: 3}, {MON: -2, TUE: -1, WED: 4}) == {
        MON: None,
        TUE: 2,
        WED: 4,
    }
    shelf = Shelf({"soup": {MON: 2}})
    shelf.move("soup", {MON: -2})
    assert shelf.on_hand("soup") == 0 and shelf.meal_ids() == set()
