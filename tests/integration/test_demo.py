"""The demo data, on every store: what `farmacy run` reports is what the store holds."""

from __future__ import annotations

from decimal import Decimal

from ops.demo import CITIES, MEALS, VENUES, seed_demo, store_holds
from ops.root import WriteSide


def test_the_store_reports_what_it_holds_not_the_demos_totals(side: WriteSide) -> None:
    seed_demo(side)
    side.catalogue.register_city("hamburg", "Hamburg", "Europe/Berlin")
    side.catalogue.register_meal("kale-soup", "Kale soup", "5.90", "EUR")
    seed_demo(side)  # a restart seeds again: nothing new

    assert store_holds(side) == {
        "cities": len(CITIES) + 1,
        "venues": len(VENUES),
        "fridges": sum(len(fridges) for _, _, fridges in VENUES.values()),
        "meals": len(MEALS) + 1,
    }


def test_a_restart_after_an_operator_repriced_a_demo_meal_keeps_the_new_price(
    side: WriteSide,
) -> None:
    seed_demo(side)
    meal_id = sorted(MEALS)[0]
    side.catalogue.reprice_meal(meal_id, "99.90")

    seed_demo(side)  # `make run` again: the demo's registration is a repeat, not a conflict

    assert side.catalogue.meal(meal_id).price == Decimal("99.90")
