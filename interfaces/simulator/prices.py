"""The prices each meal had during a run, and which of them an order may have paid.

An operator's new price reaches orders once the API's price list has taken in its event
(application/prices.py: within the list's `max_age`, 100 ms, on each API process). The
simulator only knows when it sent a reprice and when the API answered, so it allows an order
any price in force at some moment between sending the order and its answer, a price being in
force from the moment its reprice was sent until `FOLLOW_SECONDS` after the next one was
answered. Times are wall-clock seconds, so a ledger can be checked again by another process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

FOLLOW_SECONDS = 2.0
"""How long after a reprice's answer an API process may still price at the old price: the
price list's 100 ms, with room for a loaded machine's slow refresh."""


@dataclass(frozen=True)
class Spell:
    price: str
    sent: float  # the reprice was sent (0: the price the meal was registered with)
    answered: float


@dataclass
class PriceBook:
    spells: dict[str, list[Spell]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    """Meals whose reprice went unanswered: it may or may not have applied."""

    @classmethod
    def listed(cls, meals: dict[str, str]) -> PriceBook:
        """The meals at the prices they were registered with."""
        return cls({meal_id: [Spell(price, 0.0, 0.0)] for meal_id, price in meals.items()})

    def repriced(self, meal_id: str, price: str, sent: float, answered: float) -> None:
        self.spells.setdefault(meal_id, []).append(Spell(price, sent, answered))

    def lost(self, meal_id: str) -> None:
        self.unknown.add(meal_id)

    def possible(self, meal_id: str, sent: float, answered: float) -> set[str] | None:
        """The prices an order sent at `sent` and answered at `answered` may have paid (None:
        not known)."""
        if meal_id in self.unknown or meal_id not in self.spells:
            return None
        spells = self.spells.get(meal_id, [])
        found = set()
        for n, spell in enumerate(spells):
            ends = spells[n + 1].answered + FOLLOW_SECONDS if n + 1 < len(spells) else math.inf
            if spell.sent <= answered and sent <= ends:
                found.add(spell.price)
        return found

    def as_dict(self) -> dict[str, Any]:
        spells = {m: [s.__dict__ for s in spells] for m, spells in self.spells.items()}
        return {"spells": spells, "unknown": sorted(self.unknown)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> PriceBook:
        spells = {m: [Spell(**s) for s in found] for m, found in saved["spells"].items()}
        return cls(spells, set(saved["unknown"]))
