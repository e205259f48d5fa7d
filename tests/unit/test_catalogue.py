"""Cities, venues and meals: what the catalogue accepts and what it refuses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.catalogue import City, Meal, Venue
from domain.errors import InvalidRequest
from domain.values import aware, money, natural_id, stream_id

GOOD_IDS = ["a", "0", "kreuzberg-gym-1", "a" * 64, "9-"]
BAD_IDS = ["", "-a", "A", "a_b", "a b", "a.b", "a" * 65, "straße", "a\n", "a/b"]


def names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.pending_events]


# ---- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", GOOD_IDS)
def test_well_formed_ids_are_accepted(value: str) -> None:
    assert natural_id("city_id", value) == value


@pytest.mark.parametrize("value", [*BAD_IDS, None, 7])
def test_malformed_ids_are_refused(value: Any) -> None:
    with pytest.raises(InvalidRequest):
        natural_id("city_id", value)


def test_stream_ids_are_deterministic_and_differ_by_kind() -> None:
    assert stream_id("city", "berlin") == stream_id("city", "berlin")
    assert stream_id("city", "berlin") != stream_id("venue", "berlin")
    assert City.create_id("berlin") == stream_id("city", "berlin")
    assert Venue.create_id("berlin") == stream_id("venue", "berlin")
    assert Meal.create_id("berlin") == stream_id("meal", "berlin")


# ---- moments -------------------------------------------------------------------------------


def test_aware_datetimes_are_accepted() -> None:
    moment = datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

    assert aware(moment) is moment


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        aware(datetime(2025, 6, 1, 12, 0))  # deliberately naive


# ---- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("4.50", Decimal("4.50")),
        ("4.5", Decimal("4.50")),
        ("4", Decimal("4.00")),
        ("0", Decimal("0.00")),
        (Decimal("12.99"), Decimal("12.99")),
        ("1e3", Decimal("1000.00")),
    ],
)
def test_amounts_with_at_most_two_decimals_are_accepted(amount: str, expected: Decimal) -> None:
    value = money(amount)

    assert value == expected
    assert value.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "amount", ["4.505", "0.001", "-1.00", "abc", "", "NaN", "sNaN", "Infinity", "1e30", "9" * 40]
)
def test_other_amounts_are_refused(amount: str) -> None:
    with pytest.raises(InvalidRequest):
        money(amount)


# ---- cities --------------------------------------------------------------------------------


def test_registering_a_city() -> None:
    city = City.register("berlin", "  Berlin ", "Europe/Berlin")

    assert names(city) == ["Registered"]
    event = city.pending_events[0]
    assert (event.city_id, event.name, event.timezone) == ("berlin", "Berlin", "Europe/Berlin")
    assert city.id == City.create_id("berlin")
    assert city.version == 0


@pytest.mark.parametrize("city_id", BAD_IDS)
def test_a_city_with_a_malformed_id_is_refused(city_id: str) -> None:
    with pytest.raises(InvalidRequest):
        City.register(city_id, "Berlin", "Europe/Berlin")


@pytest.mark.parametrize(
    "tz", ["", "Europe", "Mars/Olympus_Mons", "Europe/Berlin ", "../etc/passwd", "/etc/passwd"]
)
def test_a_city_with_an_unknown_timezone_is_refused(tz: str) -> None:
    with pytest.raises(InvalidRequest):
        City.register("berlin", "Berlin", tz)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_city_without_a_sensible_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidRequest):
        City.register("berlin", name, "Europe/Berlin")


def test_a_city_registered_again_with_the_same_details_is_the_same() -> None:
    city = City.register("berlin", "Berlin", "Europe/Berlin")

    assert city.same_as(City.register("berlin", "Berlin", "Europe/Berlin"))
    assert not city.same_as(City.register("berlin", "Berlin", "UTC"))
    assert not city.same_as(City.register("berlin", "Berlin-Mitte", "Europe/Berlin"))


# ---- venues --------------------------------------------------------------------------------


def test_registering_a_venue() -> None:
    venue = Venue.register("kreuzberg-gym", "berlin", "Kreuzberg Gym")

    assert names(venue) == ["Registered"]
    assert (venue.venue_id, venue.city_id, venue.name) == (
        "kreuzberg-gym",
        "berlin",
        "Kreuzberg Gym",
    )
    assert venue.id == Venue.create_id("kreuzberg-gym")


@pytest.mark.parametrize(
    ("venue_id", "city_id", "name"),
    [("Kreuzberg Gym", "berlin", "Gym"), ("gym", "Berlin", "Gym"), ("gym", "berlin", " ")],
)
def test_a_malformed_venue_is_refused(venue_id: str, city_id: str, name: str) -> None:
    with pytest.raises(InvalidRequest):
        Venue.register(venue_id, city_id, name)


def test_a_venue_in_another_city_is_not_the_same() -> None:
    venue = Venue.register("gym", "berlin", "Gym")

    assert venue.same_as(Venue.register("gym", "berlin", "Gym"))
    assert not venue.same_as(Venue.register("gym", "hamburg", "Gym"))


# ---- meals ---------------------------------------------------------------------------------


def test_registering_a_meal() -> None:
    meal = Meal.register("lentil-soup", "Lentil soup", "4.5", "EUR", {"vegan": True})

    assert names(meal) == ["Registered"]
    event = meal.pending_events[0]
    assert (event.meal_id, event.price, event.currency, event.details) == (
        "lentil-soup",
        Decimal("4.50"),
        "EUR",
        {"vegan": True},
    )
    assert meal.id == Meal.create_id("lentil-soup")


def test_a_meal_without_details_has_empty_details() -> None:
    assert Meal.register("soup", "Soup", "4.50", "EUR").details == {}


@pytest.mark.parametrize("currency", ["eur", "EURO", "XYZ", "", "€"])
def test_a_meal_in_an_unsupported_currency_is_refused(currency: str) -> None:
    with pytest.raises(InvalidRequest):
        Meal.register("soup", "Soup", "4.50", currency)


@pytest.mark.parametrize("price", ["4.505", "-4.50", "four", "NaN", "1e30"])
def test_a_meal_with_a_malformed_price_is_refused(price: str) -> None:
    with pytest.raises(InvalidRequest):
        Meal.register("soup", "Soup", price, "EUR")


@pytest.mark.parametrize("meal_id", BAD_IDS)
def test_a_meal_with_a_malformed_id_is_refused(meal_id: str) -> None:
    with pytest.raises(InvalidRequest):
        Meal.register(meal_id, "Soup", "4.50", "EUR")


def test_meals_differing_in_price_currency_or_details_are_not_the_same() -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR", {"vegan": True})

    assert meal.same_as(Meal.register("soup", "Soup", "4.5", "EUR", {"vegan": True}))
    assert not meal.same_as(Meal.register("soup", "Soup", "4.60", "EUR", {"vegan": True}))
    assert not meal.same_as(Meal.register("soup", "Soup", "4.50", "GBP", {"vegan": True}))
    assert not meal.same_as(Meal.register("soup", "Soup", "4.50", "EUR", {}))


def test_a_repriced_meals_registration_again_is_a_repeat_and_its_new_price_is_not() -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR", {"vegan": True})
    meal.reprice("5.20")

    assert meal.same_as(Meal.register("soup", "Soup", "4.50", "EUR", {"vegan": True}))
    assert not meal.same_as(Meal.register("soup", "Soup", "5.20", "EUR", {"vegan": True}))
    assert meal.price == Decimal("5.20")


def test_repricing_a_meal_records_the_new_price() -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR")
    meal.collect_events()

    assert meal.reprice("4.90") is True

    assert names(meal) == ["Repriced"]
    assert meal.pending_events[0].price == Decimal("4.90")
    assert meal.price == Decimal("4.90")


def test_repricing_to_the_same_price_is_a_no_op() -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR")
    meal.collect_events()

    assert meal.reprice("4.5") is False

    assert names(meal) == []


def test_repricing_to_a_malformed_price_is_refused() -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR")
    meal.collect_events()

    with pytest.raises(InvalidRequest):
        meal.reprice("4.555")

    assert names(meal) == []
    assert meal.price == Decimal("4.50")


def test_replaying_a_meals_events_rebuilds_it() -> None:
    live = Meal.register("soup", "Soup", "4.50", "EUR", {"kcal": 320})
    live.reprice("4.90")
    events = live.collect_events()

    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)

    assert rebuilt == live
    assert isinstance(rebuilt, Meal)
    assert (rebuilt.price, rebuilt.version) == (Decimal("4.90"), 1)


def test_utc_is_a_known_timezone() -> None:
    assert City.register("anywhere", "Anywhere", "UTC").timezone == "UTC"


@pytest.mark.parametrize("price", ["-0.01", "NaN", "Infinity", "seven"])
def test_repricing_to_a_negative_or_non_amount_is_refused(price: str) -> None:
    meal = Meal.register("soup", "Soup", "4.50", "EUR")
    meal.collect_events()

    with pytest.raises(InvalidRequest):
        meal.reprice(price)

    assert names(meal) == []
    assert (meal.price, meal.currency) == (Decimal("4.50"), "EUR")
