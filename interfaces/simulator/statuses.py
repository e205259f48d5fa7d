"""The order statuses the simulator knows, in one place.

Other statuses may appear as the API grows: an unknown one is "not final yet", never a
failure, and the report lists it.
"""

from __future__ import annotations

HOLDING = frozenset({"placed", "paid", "ready_for_pickup"})
"""An order in one of these holds its meals in its fridge."""

FINAL = frozenset(
    {"picked_up", "cancelled", "payment_failed", "expired", "refunded", "not_collected"}
)
"""An order here has ended: it holds nothing and will not move again (a refund aside).
`not_collected`: its pickup window closed, its meals went back on sale."""

KNOWN = HOLDING | FINAL

AFTER_CANCEL = frozenset({"cancelled", "refunded"})
"""What an order the customer cancelled (answered 200) may show: refunded if it was paid."""

AFTER_PICKUP = frozenset({"picked_up", "refunded"})
"""What an order picked up (answered 200) may show: an operator may refund it afterwards."""

READY = "ready_for_pickup"
PLACED = "placed"


def is_final(status: str) -> bool:
    return status in FINAL


def holds_meals(status: str) -> bool | None:
    """Whether an order in `status` holds its meals; None when the status is unknown."""
    if status in HOLDING:
        return True
    if status in FINAL:
        return False
    return None
