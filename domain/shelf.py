"""A fridge's shelf: its meals by best-before batch (`Shelf`, which the fridge holds), and the
shelf's rules as pure functions, each written once. The fridge records in its events what the
rules moved, and the stock views add and subtract those numbers; they call the same functions
only for events recorded before the events said what moved.

A meal's batches are `{best-before (ISO date): units}`; best-before dates are the fridge's
local dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypedDict
from zoneinfo import ZoneInfo


def local_day(moment: datetime, timezone: str) -> date:
    """The date at a fridge in `timezone`: what best-before dates are compared with."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def is_fresh(best_before: str, today: str) -> bool:
    """A batch is sold up to and including its best-before day (both ISO dates, compared as
    text: ISO dates sort as the days do)."""
    return best_before >= today


def available(fresh: int, held: int) -> int:
    """What can still be sold: fresh units on hand less what open reservations hold, never
    below zero (a count may find fewer meals than reservations hold)."""
    return max(0, fresh - held)


def after_move(batches: Mapping[str, int], moved: Mapping[str, int]) -> dict[str, int | None]:
    """What each batch a move touches holds after it (`moved`: units added, or, negative,
    removed); None where the batch is emptied, which is then dropped."""
    after: dict[str, int | None] = {}
    for best_before, units in moved.items():
        left = batches.get(best_before, 0) + units
        after[best_before] = left if left > 0 else None
    return after


def taken(batches: Mapping[str, int], units: int, fresh_from: str = "") -> dict[str, int]:
    """Which batches `units` come out of: oldest best-before first (fridges are stocked front
    to back), never more than a batch holds.

    With `fresh_from` (an ISO date), batches still good on that day go first: a meal sold is a
    fresh one, and expired ones stay behind to be discarded rather than booked as sold.
    """
    took: dict[str, int] = {}
    for best_before in sorted(batches, key=lambda b: (not is_fresh(b, fresh_from), b)):
        if units == 0:
            break
        take = min(units, batches[best_before])
        if take:
            took[best_before] = take
            units -= take
    return took


def surplus_batch(batches: Mapping[str, int], count_day: date) -> str:
    """Where units a count found beyond what was known go: the newest batch, or, with none
    known, a batch of the count's day (so they sell only that day)."""
    return max(batches, default=count_day.isoformat())


def sold(batches: Mapping[str, int], units: int, sale_day: date) -> dict[str, int]:
    """What a sale of `units` on `sale_day` moves, batch by batch (negative: units gone)."""
    took = taken(batches, units, fresh_from=sale_day.isoformat())
    return {best_before: -n for best_before, n in took.items()}


def counted(batches: Mapping[str, int], difference: int, count_day: date) -> dict[str, int]:
    """What a count's difference moves, batch by batch: a shortfall is taken oldest first,
    a surplus joins the newest batch (`surplus_batch`)."""
    if difference < 0:
        return {best_before: -n for best_before, n in taken(batches, -difference).items()}
    return {surplus_batch(batches, count_day): difference}


class ExpiredBatch(TypedDict):
    meal_id: str
    best_before: str  # ISO date
    quantity: int


@dataclass
class Shelf:
    """The meals in a fridge, by best-before batch: what it physically holds.

    Every change here is one the fridge's events record; the shelf decides nothing and never
    raises, so replaying events rebuilds it exactly.
    """

    batches: dict[str, dict[str, int]] = field(default_factory=dict)  # meal -> ISO date -> units

    def copy(self) -> Shelf:
        """A shelf that changes on its own: the batches are the only thing changed in place."""
        return Shelf({meal_id: dict(batches) for meal_id, batches in self.batches.items()})

    # ---- what it holds -----------------------------------------------------------------------

    def meal_ids(self) -> set[str]:
        return set(self.batches)

    def on_hand(self, meal_id: str, today: date | None = None) -> int:
        """Units of a meal; with `today`, only those still within their best-before."""
        batches = self.batches.get(meal_id, {})
        if today is None:
            return sum(batches.values())
        cutoff = today.isoformat()
        return sum(units for best_before, units in batches.items() if is_fresh(best_before, cutoff))

    def by_best_before(self, meal_id: str) -> dict[date, int]:
        """Units of a meal by best-before date, oldest first, expired ones included."""
        return {
            date.fromisoformat(best_before): units
            for best_before, units in sorted(self.batches.get(meal_id, {}).items())
        }

    def past(self, today: date) -> list[ExpiredBatch]:
        """The batches past their best-before on `today`, by meal and date."""
        cutoff = today.isoformat()
        return [
            ExpiredBatch(meal_id=meal_id, best_before=best_before, quantity=units)
            for meal_id, batches in sorted(self.batches.items())
            for best_before, units in sorted(batches.items())
            if not is_fresh(best_before, cutoff)
        ]

    # ---- what would move ----------------------------------------------------------------------

    def selling(self, meal_id: str, units: int, sale_day: date) -> dict[str, int]:
        """What selling `units` on `sale_day` would move (`sold`): fresh batches first."""
        return sold(self.batches.get(meal_id, {}), units, sale_day)

    def counting(self, meal_id: str, difference: int, count_day: date) -> dict[str, int]:
        """What a count's difference would move (`counted`)."""
        return counted(self.batches.get(meal_id, {}), difference, count_day)

    # ---- changes ---------------------------------------------------------------------------

    def move(self, meal_id: str, moved: Mapping[str, int]) -> None:
        """Add (or, negative, remove) units batch by batch; a batch left empty goes."""
        batches = self.batches.setdefault(meal_id, {})
        for best_before, left in after_move(batches, moved).items():
            if left is None:
                batches.pop(best_before, None)
            else:
                batches[best_before] = left
        if not batches:
            del self.batches[meal_id]

    def remove(self, meal_id: str, best_before: str) -> None:
        """Take a whole batch off the shelf (it expired)."""
        batches = self.batches.get(meal_id, {})
        batches.pop(best_before, None)
        if not batches:
            self.batches.pop(meal_id, None)
