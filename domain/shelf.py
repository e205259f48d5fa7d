"""A fridge's shelf rules, as pure functions: the fridge evolves by them and the stock views
apply them to their rows, so each rule is written once.

A meal's batches are `{best-before (ISO date): units}`; best-before dates are the fridge's
local dates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from zoneinfo import ZoneInfo


def local_day(moment: datetime, timezone: str) -> date:
    """The date at a fridge in `timezone`: what best-before dates are compared with."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def taken(batches: Mapping[str, int], units: int, fresh_from: str = "") -> dict[str, int]:
    """Which batches `units` come out of: oldest best-before first (fridges are stocked front
    to back), never more than a batch holds.

    With `fresh_from` (an ISO date), batches still good on that day go first: a meal sold is a
    fresh one, and expired ones stay behind to be discarded rather than booked as sold.
    """
    took: dict[str, int] = {}
    for best_before in sorted(batches, key=lambda b: (b < fresh_from, b)):
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
