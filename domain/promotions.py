"""Promotional campaigns, imported one-way from the operators' final spreadsheet.

A sheet is recorded once, as one event of its own stream (the stream id is the hash of the
file's content, so the same file imported again finds its stream and changes nothing). A
sheet names campaigns; a campaign's rows say which meal is cheaper where (a city or a venue),
by how much (a percentage off or a fixed price) and when (from `starts_at` up to, not
including, `ends_at`). A later sheet naming a campaign replaces that campaign's rows from the
moment the sheet was imported on; before that moment the earlier rows still held.

Where several rows apply to one meal at one venue at one moment, the customer gets the best
(lowest) price, never above the meal's regular price.

The rules for reading a row (`check_row`) are here, pure: the caller hands in what it knows
of meals and places.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypedDict
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate, event

from domain.values import NATURAL_ID, stream_id

COLUMNS = (
    "campaign",
    "meal",
    "scope",
    "percent_off",
    "fixed_price",
    "starts_at",
    "ends_at",
    "timezone",
)
"""The sheet's header row, in any order; `timezone` may be left out (or left empty)."""
REQUIRED = frozenset(COLUMNS) - {"timezone", "percent_off", "fixed_price"}
MOST_ROWS = 100_000
CENT = Decimal("0.01")

Cell = str | int | float | bool | date | datetime | None


class Promotion(TypedDict):
    """One row of a sheet as recorded: what it promises, times in UTC (ISO 8601)."""

    campaign_id: str
    meal_id: str
    scope: str  # "city" or "venue"
    scope_id: str
    percent_off: str | None  # a decimal string, e.g. "15" or "12.5"
    fixed_price: str | None  # in the meal's currency, two decimals
    starts_at: str
    ends_at: str


class PromotionSheet(Aggregate):
    """One imported sheet. Its id is the hash of the file's bytes: a repeat finds it."""

    INITIAL_VERSION = 0

    class Imported(Aggregate.Created):
        sheet_hash: str
        name: str
        imported_at: datetime
        campaign_ids: list[str]
        promotions: list[Promotion]

    @staticmethod
    def create_id(sheet_hash: str) -> UUID:
        return stream_id("promotion-sheet", sheet_hash)

    @event(Imported)
    def __init__(
        self,
        sheet_hash: str,
        name: str,
        imported_at: datetime,
        campaign_ids: list[str],
        promotions: list[Promotion],
    ) -> None:
        self.sheet_hash = sheet_hash
        self.name = name
        self.imported_at = imported_at
        self.campaign_ids = campaign_ids
        self.promotions = promotions


# ---- reading one row ---------------------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with a sheet: its row (1 is the header), the column, and why."""

    row: int
    column: str
    reason: str


class RowRefused(Exception):
    def __init__(self, column: str, reason: str) -> None:
        self.column = column
        self.reason = reason
        super().__init__(f"{column}: {reason}")


@dataclass(frozen=True)
class Places:
    """What a sheet's rows are checked against: meals' regular prices, and the time zone of
    each city and of each venue's city."""

    meal_prices: Mapping[str, Decimal]
    city_zones: Mapping[str, str]
    venue_zones: Mapping[str, str]


def check_row(cells: Mapping[str, Cell], places: Places) -> Promotion:
    """The promotion a row says, or RowRefused naming the first column that is wrong."""
    campaign_id = _identifier(cells, "campaign")
    meal_id = _identifier(cells, "meal")
    if meal_id not in places.meal_prices:
        raise RowRefused("meal", f"no meal {meal_id!r} in the catalogue")
    scope, scope_id, zone = _scope(cells, places)
    percent = _decimal(cells, "percent_off")
    fixed = _decimal(cells, "fixed_price")
    if (percent is None) == (fixed is None):
        raise RowRefused("percent_off", "give exactly one of percent_off and fixed_price")
    if percent is not None and not Decimal(0) < percent < Decimal(100):
        raise RowRefused("percent_off", f"{percent} is not between 0 and 100 (exclusive)")
    if fixed is not None:
        if fixed != fixed.quantize(CENT) or fixed < 0:
            raise RowRefused("fixed_price", f"{fixed} is not an amount with two decimals")
        regular = places.meal_prices[meal_id]
        if fixed >= regular:
            raise RowRefused("fixed_price", f"{fixed} is not below the meal's price {regular}")
    text_zone = _text(cells, "timezone")
    if text_zone:
        try:
            ZoneInfo(text_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise RowRefused("timezone", f"unknown time zone {text_zone!r}") from None
        zone = text_zone
    starts_at = _moment(cells, "starts_at", zone)
    ends_at = _moment(cells, "ends_at", zone)
    if ends_at <= starts_at:
        raise RowRefused("ends_at", f"{ends_at.isoformat()} is not after starts_at")
    return Promotion(
        campaign_id=campaign_id,
        meal_id=meal_id,
        scope=scope,
        scope_id=scope_id,
        percent_off=None if percent is None else str(percent),
        fixed_price=None if fixed is None else str(fixed.quantize(CENT)),
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
    )


def overlapping(promotions: Iterable[tuple[int, Promotion]]) -> list[RowProblem]:
    """Rows of one campaign for the same meal and place whose times overlap: the sheet
    contradicts itself (which price did the operator mean?)."""
    by_target: dict[tuple[str, str, str, str], list[tuple[str, str, int]]] = {}
    for row, p in promotions:
        key = (p["campaign_id"], p["meal_id"], p["scope"], p["scope_id"])
        by_target.setdefault(key, []).append((p["starts_at"], p["ends_at"], row))
    problems = []
    for spans in by_target.values():
        spans.sort(key=lambda span: datetime.fromisoformat(span[0]))
        latest_end: datetime | None = None
        latest_row = 0
        for starts, ends, row in spans:
            if latest_end is not None and datetime.fromisoformat(starts) < latest_end:
                problems.append(
                    RowProblem(row, "starts_at", f"overlaps row {latest_row} of the same campaign")
                )
            end = datetime.fromisoformat(ends)
            if latest_end is None or end > latest_end:
                latest_end, latest_row = end, row
    return problems


def _text(cells: Mapping[str, Cell], column: str) -> str:
    value = cells.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowRefused(column, f"expected text, found {type(value).__name__} {value!r}")
    return value.strip()


def _identifier(cells: Mapping[str, Cell], column: str) -> str:
    value = _text(cells, column)
    if not value:
        raise RowRefused(column, "is empty")
    if not NATURAL_ID.match(value):
        raise RowRefused(column, f"{value!r} is not an id (lower-case letters, digits, dashes)")
    return value


def _scope(cells: Mapping[str, Cell], places: Places) -> tuple[str, str, str]:
    value = _text(cells, "scope")
    kind, _, place = value.partition(":")
    if kind == "city" and place in places.city_zones:
        return "city", place, places.city_zones[place]
    if kind == "venue" and place in places.venue_zones:
        return "venue", place, places.venue_zones[place]
    if kind in ("city", "venue") and place:
        raise RowRefused("scope", f"no {kind} {place!r}")
    raise RowRefused("scope", f"{value!r} is not city:<city_id> or venue:<venue_id>")


def _decimal(cells: Mapping[str, Cell], column: str) -> Decimal | None:
    value = cells.get(column)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowRefused(column, f"expected a number, found {value!r}")
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowRefused(column, f"{value!r} is not a number") from None
    if not number.is_finite():
        raise RowRefused(column, f"{value!r} is not a number")
    if isinstance(value, float):  # binary fractions from a spreadsheet cell: 12.5 or 8.99
        number = number.quantize(CENT, ROUND_HALF_UP)
    return number


def _moment(cells: Mapping[str, Cell], column: str, zone: str) -> datetime:
    """A cell's moment in UTC: a date-time cell or ISO 8601 text, local to `zone` unless it
    carries an offset; a date alone is that day's local midnight."""
    value = cells.get(column)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise RowRefused(column, "is empty")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RowRefused(column, f"{text!r} is not a date-time (YYYY-MM-DD HH:MM)") from None
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif value is None:
        raise RowRefused(column, "is empty")
    else:
        raise RowRefused(column, f"expected a date-time, found {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


# ---- what is in force ----------------------------------------------------------------------


@dataclass
class Offer:
    """A recorded row, from the moment its sheet took effect until a later sheet for its
    campaign did (`replaced_at`)."""

    promotion: Promotion
    effective_from: datetime
    starts_at: datetime
    ends_at: datetime
    replaced_at: datetime | None = None

    def applies(self, venue_id: str, city_id: str, at: datetime) -> bool:
        p = self.promotion
        place = venue_id if p["scope"] == "venue" else city_id
        return (
            p["scope_id"] == place
            and self.starts_at <= at < self.ends_at
            and self.effective_from <= at
            and (self.replaced_at is None or at < self.replaced_at)
        )

    def price(self, regular: Decimal) -> Decimal:
        p = self.promotion
        if p["fixed_price"] is not None:
            return Decimal(p["fixed_price"])
        off = Decimal(p["percent_off"] or "0")
        return (regular * (Decimal(100) - off) / Decimal(100)).quantize(CENT, ROUND_HALF_UP)


class Campaigns:
    """Every recorded campaign, folded from sheets in the order they were recorded; asks
    nothing of a clock: the moment comes with each question."""

    def __init__(self) -> None:
        self._by_meal: dict[str, list[Offer]] = {}
        self._by_campaign: dict[str, list[Offer]] = {}

    def take(self, sheet: PromotionSheet.Imported) -> None:
        effective = sheet.imported_at
        for campaign_id in sheet.campaign_ids:
            for offer in self._by_campaign.pop(campaign_id, []):
                offer.replaced_at = effective
        for promotion in sheet.promotions:
            offer = Offer(
                promotion,
                effective,
                datetime.fromisoformat(promotion["starts_at"]),
                datetime.fromisoformat(promotion["ends_at"]),
            )
            self._by_meal.setdefault(promotion["meal_id"], []).append(offer)
            self._by_campaign.setdefault(promotion["campaign_id"], []).append(offer)

    def best_price(
        self, meal_id: str, regular: Decimal, venue_id: str, city_id: str, at: datetime
    ) -> Decimal:
        """The lowest price any promotion in force gives, never above `regular`."""
        best = regular
        for offer in self._by_meal.get(meal_id, ()):
            if offer.applies(venue_id, city_id, at):
                best = min(best, offer.price(regular))
        return best

    def changes(self, meal_id: str, after: datetime) -> datetime | None:
        """The first moment after `after` at which a meal's promotions may change (one
        starts, ends or is replaced): how long an answer priced at `after` stays true."""
        moments = [
            moment
            for offer in self._by_meal.get(meal_id, ())
            for moment in (offer.starts_at, offer.ends_at, offer.effective_from, offer.replaced_at)
            if moment is not None and moment > after
        ]
        return min(moments, default=None)


@dataclass(frozen=True)
class Sheet:
    """A spreadsheet as read: its content's hash, its rows by row number (cells by column
    name, blanks as None) and what was wrong with it before any row was checked."""

    sheet_hash: str
    name: str
    rows: list[tuple[int, dict[str, Cell]]]
    problems: list[RowProblem]
