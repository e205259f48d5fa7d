"""What the kitchen and the fridges tell us: deliveries, counts, expiries, fridge status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from application.catalogue import Catalogue
from application.clock import Clock
from application.fridge_writer import Decided, FridgeWriter
from domain.values import natural_id


class Stock:
    def __init__(self, writer: FridgeWriter, catalogue: Catalogue, clock: Clock) -> None:
        self.writer = writer
        self.catalogue = catalogue
        self.clock = clock

    def deliver(
        self, fridge_id: str, delivery_id: str, lines: Mapping[str, int], best_before: date
    ) -> Decided[bool]:
        """The kitchen stocked a fridge. A delivery id seen before changes nothing."""
        self._known_meals(lines)
        now = self.clock()
        return self.writer.execute(
            fridge_id, lambda fridge: fridge.deliver(delivery_id, lines, best_before, now)
        )

    def report_counts(
        self, fridge_id: str, report_id: str, taken_at: datetime, counts: Mapping[str, int]
    ) -> Decided[bool]:
        """The fridge counted its shelves. Late and repeated reports change nothing."""
        self._known_meals(counts)
        now = self.clock()
        return self.writer.execute(
            fridge_id, lambda fridge: fridge.report_counts(report_id, taken_at, counts, now)
        )

    def discard_expired(self, fridge_id: str) -> Decided[dict[str, int]]:
        now = self.clock()
        return self.writer.execute(fridge_id, lambda fridge: fridge.discard_expired(now))

    def expire_reservations(self, fridge_id: str) -> Decided[list[str]]:
        """Release unpaid reservations past their deadline (also those no order was made for)."""
        now = self.clock()
        return self.writer.execute(fridge_id, lambda fridge: fridge.expire_reservations(now))

    def take_offline(self, fridge_id: str, reason: str) -> Decided[bool]:
        return self.writer.execute(fridge_id, lambda fridge: fridge.take_offline(reason))

    def bring_online(self, fridge_id: str) -> Decided[bool]:
        return self.writer.execute(fridge_id, lambda fridge: fridge.bring_online())

    def retire(self, fridge_id: str) -> Decided[bool]:
        return self.writer.execute(fridge_id, lambda fridge: fridge.retire())

    def _known_meals(self, lines: Mapping[str, int]) -> None:
        for meal_id in lines:
            self.catalogue.meal(natural_id("meal_id", meal_id))
