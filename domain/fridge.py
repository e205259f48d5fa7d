"""The fridge: the unit of consistency for stock ("an actor per fridge").

Public methods decide (check the rules, then record events); the private `@event` methods
only change state, because they are replayed when the fridge is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.copying import copy_by_parts
from domain.errors import (
    AlreadyExists,
    FridgeUnavailable,
    IdempotencyKeyReused,
    InvalidRequest,
    NotPaidYet,
    ReservationClosed,
    ReservationNotFound,
    SoldOut,
)
from domain.fridge_memory import (
    delivery_fingerprint,
    report_fingerprint,
    reported_at,
    same_delivery,
)
from domain.fridge_snapshots import upcast_v1_v2, upcast_v2_v3
from domain.order import OrderLine, OrderTerms
from domain.reservations import PICKED_UP, Promised, ReservationBook
from domain.shelf import ExpiredBatch, Shelf, available, is_fresh, local_day
from domain.values import (
    MOST_UNITS,
    REPORTS_KEPT_FOR,
    MealLines,
    ReleaseReason,
    aware,
    meal_lines,
    natural_id,
    stream_id,
)

# Promised is part of what the fridge answers (`Fridge.promised`), though its book keeps it.
__all__ = [
    "MAX_REPORT_AHEAD",
    "SELLING",
    "Fridge",
    "FridgeStatus",
    "Promised",
    "delivery_fingerprint",
    "report_fingerprint",
    "reported_at",
    "same_delivery",
    "sells",
]

MAX_REPORT_AHEAD = timedelta(minutes=5)
"""A count report stamped further in the future than this is refused: it would mask later ones."""


class FridgeStatus(StrEnum):
    ACTIVE = "active"
    OFFLINE = "offline"
    RETIRED = "retired"


def sells(status: str) -> bool:
    """Only an active fridge sells (`status` as stored: snapshots keep it as a plain string)."""
    return status == FridgeStatus.ACTIVE


SELLING = tuple(status for status in FridgeStatus if sells(status))
"""The statuses in which a fridge sells: what a view's SQL filter on status is built from."""


class Fridge(Aggregate):
    INITIAL_VERSION = 0
    __deepcopy__ = copy_by_parts  # a speed measure for the aggregate cache (domain/copying.py)
    # 2: reservations and settled orders remember what the order was promised (its birth).
    # 3: the shelf and the reservation book are parts of their own.
    class_version = 3

    # Snapshots of earlier versions load through these (domain/fridge_snapshots.py).
    upcast_v1_v2 = staticmethod(upcast_v1_v2)
    upcast_v2_v3 = staticmethod(upcast_v2_v3)

    # ---- its events: what projections and the fulfilment flow match on ----------------------

    class Installed(Aggregate.Created):
        fridge_id: str
        venue_id: str
        city_id: str
        timezone: str

    class MealsDelivered(Aggregate.Event):
        delivery_id: str
        lines: MealLines
        best_before: date

    class CountsReported(Aggregate.Event):
        report_id: str
        taken_at: datetime
        counts: MealLines

    class StockAdjusted(Aggregate.Event):
        differences: MealLines  # counted less expected, per meal
        reason: str
        report_id: str
        unknown_best_before: date
        # meal -> best-before (ISO) -> units it gained or (negative) lost; None in events
        # recorded before they said what moved (the shelf's rule says it on replay)
        batches: dict[str, dict[str, int]] | None = None

    class MealsExpired(Aggregate.Event):
        batches: list[ExpiredBatch]

    class ReservedMealsMissing(Aggregate.Event):
        meal_id: str
        held: int
        on_hand: int
        order_ids: list[str]  # the newest reservations, which lose

    class MealsReserved(Aggregate.Event):
        """The order's birth. Reservations recorded before orders were born in the fridge
        carry no terms (their `Order` was appended by the API): hence the defaults."""

        order_id: str
        lines: MealLines
        expires_at: datetime  # the payment deadline
        reserved_at: datetime
        customer_id: str = ""
        priced_lines: list[OrderLine] | None = None
        total: Decimal | None = None
        currency: str = ""
        fingerprint: str = ""

    class ReservationConfirmed(Aggregate.Event):
        order_id: str

    class ReservationReleased(Aggregate.Event):
        order_id: str
        lines: MealLines
        reason: str
        at: datetime

    class MealsPickedUp(Aggregate.Event):
        order_id: str
        lines: MealLines
        at: datetime
        # meal -> best-before (ISO) -> units taken (negative); None as in StockAdjusted
        batches: dict[str, dict[str, int]] | None = None

    class TakenOffline(Aggregate.Event):
        reason: str

    class BackOnline(Aggregate.Event):
        pass

    class Retired(Aggregate.Event):
        pass

    @staticmethod
    def create_id(fridge_id: str) -> UUID:
        return stream_id("fridge", fridge_id)

    @event(Installed)
    def __init__(self, fridge_id: str, venue_id: str, city_id: str, timezone: str) -> None:
        self.fridge_id = fridge_id
        self.venue_id = venue_id
        self.city_id = city_id
        self.timezone = timezone
        self.status = FridgeStatus.ACTIVE
        self._shelf = Shelf()  # what is physically in the fridge
        self._book = ReservationBook()  # what open reservations hold, and settled orders
        self.deliveries: dict[str, str] = {}  # delivery id -> best-before
        self.last_report_at: datetime | None = None
        self.reports: dict[str, str] = {}  # report id -> what it said, for REPORTS_KEPT_FOR

    # ---- what the fridge knows -------------------------------------------------------------

    def today(self, now: datetime) -> date:
        """The local date at the fridge: best-before dates are local dates."""
        return local_day(aware(now), self.timezone)

    def on_hand(self, meal_id: str, today: date | None = None) -> int:
        """Units in the fridge; with `today`, only those still within their best-before."""
        return self._shelf.on_hand(meal_id, today)

    def held(self, meal_id: str) -> int:
        return self._book.held(meal_id)

    def shelf(self, meal_id: str) -> dict[date, int]:
        """Units of a meal on the shelf by best-before date, expired ones included."""
        return self._shelf.by_best_before(meal_id)

    def open_orders(self) -> list[str]:
        """The orders whose meals this fridge holds, oldest reservation first."""
        return self._book.open_orders()

    def reservation_status(self, order_id: str) -> str | None:
        """What became of an order's reservation here: held, confirmed (paid), or how it
        ended (picked_up, or why it was released); None if the fridge does not know it (or
        has forgotten it, two days after it ended)."""
        return self._book.status(order_id)

    def available(self, meal_id: str, today: date) -> int:
        """What can still be sold: fresh units on hand less what open reservations hold."""
        return available(self.on_hand(meal_id, today), self.held(meal_id))

    @property
    def recent_reports(self) -> dict[str, str]:
        """Count reports of the last REPORTS_KEPT_FOR by id: what each said (its fingerprint).

        A snapshot taken before fridges remembered reports loads (upcast) remembering none."""
        return self.reports

    def meal_ids(self) -> list[str]:
        return sorted(self._shelf.meal_ids() | set(self._book.meals_held()))

    def same_as(self, other: Fridge) -> bool:
        """Installing a fridge again in the same venue is a repeat, not a conflict."""
        return (self.venue_id, self.city_id) == (other.venue_id, other.city_id)

    # ---- kitchen and fridge cloud --------------------------------------------------------

    def deliver(
        self, delivery_id: str, lines: Mapping[str, int], best_before: date, now: datetime
    ) -> bool:
        """Add a delivered batch. A delivery id already applied with the same lines and
        best-before changes nothing; with others it is refused (AlreadyExists)."""
        natural_id("delivery_id", delivery_id)
        checked = meal_lines(lines)
        if delivery_id in self.deliveries:
            if not same_delivery(self.deliveries[delivery_id], checked, best_before):
                raise AlreadyExists("delivery", delivery_id)
            return False
        if sum(checked.values()) > MOST_UNITS:
            raise InvalidRequest(
                f"delivery {delivery_id} brings {sum(checked.values())} units; "
                f"one delivery brings at most {MOST_UNITS}"
            )
        self._refuse_if(FridgeStatus.RETIRED)
        if not is_fresh(best_before.isoformat(), self.today(now).isoformat()):
            raise InvalidRequest(f"delivery {delivery_id} is already past its best-before")
        self._delivered(delivery_id=delivery_id, lines=checked, best_before=best_before)
        return True

    def report_counts(
        self, report_id: str, taken_at: datetime, counts: Mapping[str, int], now: datetime
    ) -> bool:
        """Reconcile with what the fridge counted: the count is the physical truth.

        A report not newer than the last one applied (late or duplicated) is ignored.
        Meals the report does not list are left as they are.
        """
        natural_id("report_id", report_id)
        aware(taken_at)
        for meal_id, units in counts.items():
            natural_id("meal_id", meal_id)
            whole = isinstance(units, int) and not isinstance(units, bool)
            if not whole or not 0 <= units <= MOST_UNITS:
                raise InvalidRequest(f"count of {meal_id} must be a whole number 0-{MOST_UNITS}")
        if taken_at > aware(now) + MAX_REPORT_AHEAD:
            raise InvalidRequest(f"report {report_id} is stamped in the future")
        said = self.recent_reports.get(report_id)
        if said is not None:
            if said != report_fingerprint(taken_at, counts):
                raise AlreadyExists("count report", report_id)
            return False
        if self.last_report_at is not None and taken_at <= self.last_report_at:
            return False
        self._refuse_if(FridgeStatus.RETIRED)
        self._counts_reported(report_id=report_id, taken_at=taken_at, counts=dict(counts))
        differences = {
            meal_id: units - self.on_hand(meal_id)
            for meal_id, units in sorted(counts.items())
            if units != self.on_hand(meal_id)
        }
        if differences:
            count_day = self.today(taken_at)
            self._stock_adjusted(
                differences=differences,
                reason="count",
                report_id=report_id,
                unknown_best_before=count_day,
                batches={
                    meal_id: self._shelf.counting(meal_id, difference, count_day)
                    for meal_id, difference in differences.items()
                },
            )
        self._flag_missing(self.today(now))
        return True

    def discard_expired(self, now: datetime) -> dict[str, int]:
        """Take batches past their best-before off the shelf. Returns units per meal."""
        expired = self._shelf.past(self.today(now))
        if expired:
            self._expired(batches=expired)
        self._flag_missing(self.today(now))
        totals: dict[str, int] = {}
        for batch in expired:
            totals[batch["meal_id"]] = totals.get(batch["meal_id"], 0) + batch["quantity"]
        return totals

    # ---- orders --------------------------------------------------------------------------

    def reserve(
        self,
        order_id: str,
        lines: Mapping[str, int],
        expires_at: datetime,
        now: datetime,
        order: OrderTerms | None = None,
    ) -> bool:
        """Hold meals for an order, whole or not at all: the order's birth.

        `order` is what the customer was promised (priced lines, total, currency); it goes
        into the reservation event, from which the order flow creates the `Order`. The fridge
        decides repeats inside its turn: an order id it knows (open or settled) with the same
        lines is the same request and changes nothing (False); with other lines the key was
        reused for another request, which is refused whole.
        """
        checked = meal_lines(lines)
        aware(expires_at)
        if order is not None and _lines_of(order) != checked:
            raise InvalidRequest(f"order {order_id}: priced lines differ from the lines held")
        known = self._book.lines_known(order_id)
        if known is not None:
            if known and known != checked:  # none: settled before v2
                raise IdempotencyKeyReused(order_id)
            return False
        if not sells(self.status):
            raise FridgeUnavailable(self.fridge_id, self.status)
        today = self.today(now)
        if any(self.available(meal_id, today) < units for meal_id, units in checked.items()):
            raise SoldOut(self.fridge_id, {m: self.available(m, today) for m in checked})
        if order is None:
            self._reserved(order_id=order_id, lines=checked, expires_at=expires_at, reserved_at=now)
        else:
            self._reserved(
                order_id=order_id,
                lines=checked,
                expires_at=expires_at,
                reserved_at=now,
                customer_id=order["customer_id"],
                priced_lines=order["lines"],
                total=order["total"],
                currency=order["currency"],
                fingerprint=order["fingerprint"],
            )
        return True

    def promised(self, order_id: str) -> Promised | None:
        """What the order reserved here was promised, open or settled, if the fridge knows."""
        return self._book.promised(order_id)

    def confirm(self, order_id: str) -> bool:
        """Payment arrived: the reservation stays held until pickup and no longer expires."""
        self._open(order_id)
        if self._book.paid(order_id):
            return False
        self._confirmed(order_id=order_id)
        return True

    def release(self, order_id: str, reason: ReleaseReason, now: datetime) -> bool:
        """Put held meals back on sale. Releasing a settled reservation changes nothing."""
        if self._book.outcome(order_id) is not None:
            return False
        lines = self._open(order_id)
        self._released(order_id=order_id, lines=lines, reason=reason.value, at=aware(now))
        return True

    def cancel(self, order_id: str, now: datetime) -> bool:
        """The customer gave the order up before pickup, paid or not: its meals go back on
        sale. Once they are taken out it is too late (ReservationClosed). Decided here, in the
        fridge's turn, so a cancel racing a pickup is told apart: never both."""
        if self._book.outcome(order_id) == PICKED_UP:
            raise ReservationClosed(self.fridge_id, order_id, PICKED_UP)
        return self.release(order_id, ReleaseReason.CANCELLED, now)

    def expire_reservations(self, now: datetime) -> list[str]:
        """Release every unpaid reservation whose time is up. Returns their order ids."""
        aware(now)  # refused even when no reservation is open
        due = self._book.due(now)
        for order_id in due:
            self.release(order_id, ReleaseReason.EXPIRED, now)
        return due

    def pick_up(self, order_id: str, now: datetime) -> bool:
        """The customer took a paid order's meals out of the fridge."""
        if self._book.outcome(order_id) == PICKED_UP:
            return False
        lines = self._open(order_id)
        if not self._book.paid(order_id):
            raise NotPaidYet(order_id)
        sale_day = self.today(now)  # a sold meal is a fresh one
        self._picked_up(
            order_id=order_id,
            lines=lines,
            at=aware(now),
            batches={m: self._shelf.selling(m, units, sale_day) for m, units in lines.items()},
        )
        return True

    # ---- life cycle ----------------------------------------------------------------------

    def take_offline(self, reason: str) -> bool:
        self._refuse_if(FridgeStatus.RETIRED)
        if self.status == FridgeStatus.OFFLINE:
            return False
        self._taken_offline(reason=reason)
        return True

    def bring_online(self) -> bool:
        self._refuse_if(FridgeStatus.RETIRED)
        if self.status == FridgeStatus.ACTIVE:
            return False
        self._back_online()
        return True

    def retire(self) -> bool:
        if self.status == FridgeStatus.RETIRED:
            return False
        held = self._book.open_orders()
        if held:
            raise InvalidRequest(f"fridge {self.fridge_id} still holds {len(held)} reservations")
        self._retired()
        return True

    # ---- helpers for deciding ------------------------------------------------------------

    def _refuse_if(self, status: FridgeStatus) -> None:
        if self.status == status:
            raise FridgeUnavailable(self.fridge_id, status)

    def _open(self, order_id: str) -> MealLines:
        """What an open reservation holds; ReservationClosed or ReservationNotFound if none."""
        lines = self._book.holding(order_id)
        if lines is not None:
            return lines
        outcome = self._book.outcome(order_id)
        if outcome is not None:
            raise ReservationClosed(self.fridge_id, order_id, outcome)
        raise ReservationNotFound(self.fridge_id, order_id)

    def _flag_missing(self, today: date) -> None:
        """When fewer fresh meals remain than reservations hold, name the orders that lose.

        The newest reservations lose first. Each is flagged once; the order flow acts on it.
        """
        for meal_id in self._book.meals_held():
            gap = self.held(meal_id) - self.on_hand(meal_id, today)
            losing = self._book.losing(meal_id, gap)
            if losing:
                self._reserved_meals_missing(
                    meal_id=meal_id,
                    held=self.held(meal_id),
                    on_hand=self.on_hand(meal_id, today),
                    order_ids=losing,
                )

    # ---- events: state changes only --------------------------------------------------------

    @event(MealsDelivered)
    def _delivered(self, delivery_id: str, lines: MealLines, best_before: date) -> None:
        key = best_before.isoformat()
        self.deliveries[delivery_id] = delivery_fingerprint(lines, best_before)
        for meal_id, units in lines.items():
            self._shelf.move(meal_id, {key: units})

    @event(CountsReported)
    def _counts_reported(self, report_id: str, taken_at: datetime, counts: MealLines) -> None:
        self.last_report_at = taken_at
        reports = self.recent_reports
        reports[report_id] = report_fingerprint(taken_at, counts)
        forget_before = taken_at - REPORTS_KEPT_FOR
        for old in [r for r, said in reports.items() if reported_at(said) < forget_before]:
            del reports[old]

    @event(StockAdjusted)
    def _stock_adjusted(
        self,
        differences: MealLines,
        reason: str,
        report_id: str,
        unknown_best_before: date,
        batches: dict[str, dict[str, int]] | None = None,
    ) -> None:
        for meal_id, difference in differences.items():
            if batches is not None:
                self._shelf.move(meal_id, batches[meal_id])
            else:
                moved = self._shelf.counting(meal_id, difference, unknown_best_before)
                self._shelf.move(meal_id, moved)

    @event(MealsExpired)
    def _expired(self, batches: list[ExpiredBatch]) -> None:
        for batch in batches:
            self._shelf.remove(batch["meal_id"], batch["best_before"])

    @event(ReservedMealsMissing)
    def _reserved_meals_missing(
        self, meal_id: str, held: int, on_hand: int, order_ids: list[str]
    ) -> None:
        self._book.flag_missing(order_ids)

    @event(MealsReserved)
    def _reserved(
        self,
        order_id: str,
        lines: MealLines,
        expires_at: datetime,
        reserved_at: datetime,
        customer_id: str = "",
        priced_lines: list[OrderLine] | None = None,
        total: Decimal | None = None,
        currency: str = "",
        fingerprint: str = "",
    ) -> None:
        order: OrderTerms | None = None
        if priced_lines is not None and total is not None:
            order = OrderTerms(
                customer_id=customer_id,
                lines=priced_lines,
                total=total,
                currency=currency,
                fingerprint=fingerprint,
            )
        self._book.hold(order_id, lines, expires_at, reserved_at, order)

    @event(ReservationConfirmed)
    def _confirmed(self, order_id: str) -> None:
        self._book.confirm(order_id)

    @event(ReservationReleased)
    def _released(self, order_id: str, lines: MealLines, reason: str, at: datetime) -> None:
        self._book.close(order_id, reason, at)

    @event(MealsPickedUp)
    def _picked_up(
        self,
        order_id: str,
        lines: MealLines,
        at: datetime,
        batches: dict[str, dict[str, int]] | None = None,
    ) -> None:
        self._book.close(order_id, PICKED_UP, at)
        for meal_id, units in lines.items():
            if batches is not None:
                self._shelf.move(meal_id, batches[meal_id])
            else:
                self._shelf.move(meal_id, self._shelf.selling(meal_id, units, self.today(at)))

    @event(TakenOffline)
    def _taken_offline(self, reason: str) -> None:
        self.status = FridgeStatus.OFFLINE

    @event(BackOnline)
    def _back_online(self) -> None:
        self.status = FridgeStatus.ACTIVE

    @event(Retired)
    def _retired(self) -> None:
        self.status = FridgeStatus.RETIRED


def _lines_of(order: OrderTerms) -> MealLines:
    return {line["meal_id"]: line["quantity"] for line in order["lines"]}
