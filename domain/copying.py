"""A copy of an aggregate that evolves on its own, made in a fraction of `copy.deepcopy`'s time.

The aggregate cache hands out a copy on every load (`deepcopy`), and the fridge writer loads
after each conflict: a popular fridge keeps hundreds of settled orders for two days, which
`deepcopy` walks one object at a time (tens of milliseconds). This is a speed measure, kept
out of the business rules: an aggregate opts in with `__deepcopy__ = copy_by_parts`.

The rule it relies on: whatever the aggregate changes in place has a `copy()` that is enough
for it (a dict or list of values that are only ever replaced, or a part such as `Shelf` or
`ReservationBook`, which copies what it changes in place itself); everything else (ids,
names, times, statuses) is only ever replaced, so it is shared.
"""

from __future__ import annotations

from typing import Any, TypeVar

A = TypeVar("A")


def copy_by_parts(aggregate: A, memo: dict[int, Any]) -> A:
    """`aggregate.__deepcopy__`: each attribute with a `copy()` copied, the rest shared."""
    copied = object.__new__(type(aggregate))
    state = {
        name: value.copy() if hasattr(value, "copy") else value
        for name, value in aggregate.__dict__.items()
    }
    copied.__dict__.update(state)
    memo[id(aggregate)] = copied
    return copied
