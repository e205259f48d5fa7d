"""A fridge's reservation book: the meals its open reservations hold, and the orders it
settled lately (CLOSED_ORDERS_KEPT_FOR), so that a repeated or late command is known.

The book decides nothing and never raises: the fridge checks the rules and records events,
and each event makes one change here, so replaying events rebuilds the book exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from domain.order import OrderTerms
from domain.values import CLOSED_ORDERS_KEPT_FOR, MealLines

PICKED_UP = "picked_up"
"""How an order whose meals were taken out ended (the other endings are `ReleaseReason`s)."""


class Reservation(TypedDict):
    lines: MealLines
    expires_at: datetime
    confirmed: bool
    missing: bool  # a count showed its meals gone; the order flow must act
    reserved_at: datetime
    order: OrderTerms | None  # None for reservations recorded before orders were born here


class ClosedOrder(TypedDict):
    outcome: str  # picked_up, or a ReleaseReason
    at: datetime
    lines: MealLines  # what it held, so a late repeat is told from a reused key
    reserved_at: datetime
    expires_at: datetime
    order: OrderTerms | None


@dataclass(frozen=True)
class Promised:
    """What an order reserved at this fridge was promised, as its reservation event said."""

    terms: OrderTerms
    placed_at: datetime
    payment_due_by: datetime
    outcome: str | None  # None while held; then picked_up, or why it was released


@dataclass
class ReservationBook:
    """Open reservations, the units they hold per meal, and settled orders. The fridge asks
    through the methods below; the fields are the book's own (and its snapshots')."""

    open: dict[str, Reservation] = field(default_factory=dict)  # oldest reservation first
    closed: dict[str, ClosedOrder] = field(default_factory=dict)
    holds: dict[str, int] = field(default_factory=dict)  # meal -> units, the sum of `open`

    def copy(self) -> ReservationBook:
        """A book that changes on its own. Changes replace, and never change in place, the
        lines and terms of a reservation and every settled order, so those are shared."""
        return ReservationBook(
            open={order_id: Reservation(**r) for order_id, r in self.open.items()},
            closed=dict(self.closed),
            holds=dict(self.holds),
        )

    # ---- what it knows -----------------------------------------------------------------------

    def held(self, meal_id: str) -> int:
        return self.holds.get(meal_id, 0)

    def meals_held(self) -> list[str]:
        """The meals open reservations hold, by meal id."""
        return sorted(self.holds)

    def open_orders(self) -> list[str]:
        """The orders with an open reservation, oldest first."""
        return list(self.open)

    def holding(self, order_id: str) -> MealLines | None:
        """What an open reservation holds per meal (None: none open for the order)."""
        reservation = self.open.get(order_id)
        return None if reservation is None else reservation["lines"]

    def paid(self, order_id: str) -> bool:
        """Whether an open reservation is confirmed (its order paid)."""
        reservation = self.open.get(order_id)
        return reservation is not None and reservation["confirmed"]

    def outcome(self, order_id: str) -> str | None:
        """How a settled order ended (picked_up, or why it was released); None if not settled."""
        settled = self.closed.get(order_id)
        return None if settled is None else settled["outcome"]

    def status(self, order_id: str) -> str | None:
        """held, confirmed (paid), or how it ended (picked_up, or why it was released)."""
        reservation = self.open.get(order_id)
        if reservation is not None:
            return "confirmed" if reservation["confirmed"] else "held"
        settled = self.closed.get(order_id)
        return None if settled is None else settled["outcome"]

    def lines_known(self, order_id: str) -> MealLines | None:
        """The lines of an order open or settled here ({} if settled before they were kept)."""
        known = self.open.get(order_id) or self.closed.get(order_id)
        return None if known is None else known["lines"]

    def promised(self, order_id: str) -> Promised | None:
        settled = self.closed.get(order_id)
        known = self.open.get(order_id) or settled
        if known is None or known["order"] is None:
            return None
        return Promised(
            terms=known["order"],
            placed_at=known["reserved_at"],
            payment_due_by=known["expires_at"],
            outcome=None if settled is None else settled["outcome"],
        )

    def due(self, now: datetime) -> list[str]:
        """Unpaid reservations whose time is up, oldest first."""
        return [
            order_id
            for order_id, reservation in self.open.items()
            if not reservation["confirmed"] and reservation["expires_at"] <= now
        ]

    def losing(self, meal_id: str, missing: int) -> list[str]:
        """The reservations that lose when `missing` units of a meal they hold are gone.

        The newest lose first; those already flagged count against the gap and are not named
        again.
        """
        newest_first = [
            (order_id, r) for order_id, r in reversed(self.open.items()) if meal_id in r["lines"]
        ]
        gap = missing - sum(r["lines"][meal_id] for _, r in newest_first if r["missing"])
        losing: list[str] = []
        for order_id, reservation in newest_first:
            if gap <= 0:
                break
            if not reservation["missing"]:
                losing.append(order_id)
                gap -= reservation["lines"][meal_id]
        return losing

    # ---- changes ---------------------------------------------------------------------------

    def hold(
        self,
        order_id: str,
        lines: MealLines,
        expires_at: datetime,
        reserved_at: datetime,
        order: OrderTerms | None = None,
    ) -> None:
        """Open a reservation; settled orders older than CLOSED_ORDERS_KEPT_FOR are forgotten."""
        self.open[order_id] = Reservation(
            lines=lines,
            expires_at=expires_at,
            confirmed=False,
            missing=False,
            reserved_at=reserved_at,
            order=order,
        )
        for meal_id, units in lines.items():
            self.holds[meal_id] = self.holds.get(meal_id, 0) + units
        self.closed.pop(order_id, None)
        forget_before = reserved_at - CLOSED_ORDERS_KEPT_FOR
        for old in [o for o, c in self.closed.items() if c["at"] < forget_before]:
            del self.closed[old]

    def confirm(self, order_id: str) -> None:
        self.open[order_id]["confirmed"] = True

    def flag_missing(self, order_ids: list[str]) -> None:
        for order_id in order_ids:
            self.open[order_id]["missing"] = True

    def close(self, order_id: str, outcome: str, at: datetime) -> None:
        """Settle a reservation: its holds go, and the book remembers how it ended."""
        reservation = self.open.pop(order_id)
        for meal_id, units in reservation["lines"].items():
            left = self.holds.get(meal_id, 0) - units
            if left > 0:
                self.holds[meal_id] = left
            else:
                self.holds.pop(meal_id, None)
        self.closed[order_id] = ClosedOrder(
            outcome=outcome,
            at=at,
            lines=reservation["lines"],
            reserved_at=reservation["reserved_at"],
            expires_at=reservation["expires_at"],
            order=reservation["order"],
        )
