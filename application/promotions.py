"""Operators import promotional campaigns from a spreadsheet: all of it, or nothing.

`import_sheet` checks every row against the catalogue (meals, cities, venues) and reports
every problem at once, each with its row number, column and reason; a sheet with any problem
records nothing. A sheet already imported (the same bytes: the same content hash) is a
repeat and changes nothing. A good sheet is one event, one append (its own stream), so no
crash can leave half a sheet recorded. The price list (application/prices.py) follows these
events: a campaign's prices apply from the second it starts to the second it ends.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.catalogue import Catalogue
from application.clock import Clock
from application.errors import ApplicationError, NotFound
from application.store import EventStore
from domain.promotions import (
    Places,
    Promotion,
    PromotionSheet,
    RowProblem,
    RowRefused,
    Sheet,
    check_row,
    overlapping,
)

log = structlog.get_logger(__name__)
MOST_PROBLEMS_SHOWN = 1000


class SheetRejected(ApplicationError):
    """The sheet has problems; nothing of it was recorded."""

    def __init__(self, name: str, problems: list[RowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.row, p.column))
        super().__init__(f"sheet {name!r} has {len(problems)} problems; nothing was imported")


@dataclass(frozen=True)
class SheetImported:
    created: bool  # False: this very sheet was imported before (a repeat)
    sheet_hash: str
    campaign_ids: list[str]
    promotions: int
    position: int | None


class Promotions:
    def __init__(self, store: EventStore, catalogue: Catalogue, clock: Clock) -> None:
        self.store = store
        self.catalogue = catalogue
        self.clock = clock

    def import_sheet(self, sheet: Sheet) -> SheetImported:
        """Record every promotion of `sheet`, or raise SheetRejected with all its problems."""
        stream = PromotionSheet.create_id(sheet.sheet_hash)
        existing = self._existing(stream)
        if existing is not None:
            return self._repeat(existing)
        problems = list(sheet.problems)
        places = self._places(sheet)
        checked: list[tuple[int, Promotion]] = []
        unreadable = {problem.row for problem in sheet.problems}
        for row, cells in sheet.rows:
            if row in unreadable:  # named already (a formula): its values mean nothing
                continue
            try:
                checked.append((row, check_row(cells, places)))
            except RowRefused as refused:
                problems.append(RowProblem(row, refused.column, refused.reason))
        problems += overlapping(checked)
        if problems:
            log.info("promotions_sheet_rejected", sheet=sheet.name, problems=len(problems))
            raise SheetRejected(sheet.name, problems)
        promotions = [promotion for _, promotion in checked]
        recorded = PromotionSheet(
            sheet_hash=sheet.sheet_hash,
            name=sheet.name,
            imported_at=self.clock(),
            campaign_ids=sorted({p["campaign_id"] for p in promotions}),
            promotions=promotions,
        )
        try:
            position = self.store.append(recorded)
        except IntegrityError:  # the same sheet, imported at this very moment elsewhere
            winner = self._existing(stream)
            assert winner is not None
            return self._repeat(winner)
        log.info(
            "promotions_imported",
            sheet=sheet.name,
            sheet_hash=sheet.sheet_hash,
            campaigns=len(recorded.campaign_ids),
            promotions=len(promotions),
        )
        return SheetImported(
            True, sheet.sheet_hash, recorded.campaign_ids, len(promotions), position
        )

    def _existing(self, stream: UUID) -> PromotionSheet | None:
        try:
            found: object = self.store.repository.get(stream)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, PromotionSheet) else None

    def _repeat(self, sheet: PromotionSheet) -> SheetImported:
        return SheetImported(
            False,
            sheet.sheet_hash,
            list(sheet.campaign_ids),
            len(sheet.promotions),
            self.store.position(),
        )

    def _places(self, sheet: Sheet) -> Places:
        """The meals and places the sheet names, each looked up once."""
        meals: dict[str, Decimal] = {}
        cities: dict[str, str] = {}
        venues: dict[str, str] = {}
        asked: set[tuple[str, str]] = set()
        for _, cells in sheet.rows:
            meal = cells.get("meal")
            if isinstance(meal, str) and ("meal", meal) not in asked:
                asked.add(("meal", meal))
                with contextlib.suppress(NotFound):  # the row check names it
                    meals[meal] = self.catalogue.meal(meal).price
            scope = cells.get("scope")
            if isinstance(scope, str) and ("scope", scope) not in asked:
                asked.add(("scope", scope))
                kind, _, place = scope.strip().partition(":")
                with contextlib.suppress(NotFound):  # the row check names it
                    if kind == "city":
                        cities[place] = self.catalogue.city(place).timezone
                    elif kind == "venue":
                        city_id = self.catalogue.venue(place).city_id
                        venues[place] = self.catalogue.city(city_id).timezone
        return Places(meals, cities, venues)
