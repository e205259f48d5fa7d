"""The read side as the API sees it: one database per read model, and fresh-stamped answers.

Every query answer carries three facts about its freshness, read in the same snapshot as the
data itself:

- `position`: the event-store position the read model reflects (every shard reached it);
- `as_of`: when the newest event the model has applied was recorded (null before any);
- `age_seconds`: the server's wall clock minus `as_of`. It is how old the newest change the
  answer reflects is, not how far behind the model is: on a quiet store it grows while the
  data is still complete. To know that an answer includes your own write, pass the position
  your command returned as `min_position`; `/readyz` reports how far each model lags.

API processes only read here; the workers that write these models run elsewhere
(`farmacy worker`), never inside an API process.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from ops.settings import Settings
from projections.city_catalogue import CityCatalogue
from projections.database import Database, Tx
from projections.freshness import answer
from projections.models import PROJECTIONS, open_database
from projections.projection import Projection

T = TypeVar("T")
P = TypeVar("P", bound=Projection)

WAIT_SECONDS = 2.0
"""How long a query with `min_position` waits for the model, at most."""
POOL_SIZES = {"venue_menu": 4, "fridge_stock": 3, "city_catalogue": 3}


class ReadModelNotBuilt(Exception):
    """A read model's tables do not exist yet: no worker has ever run for it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the {name} read model is not built yet; is its worker running?")
        self.name = name


class BadCursor(Exception):
    """A pagination cursor this API did not hand out."""


@dataclass(frozen=True)
class Fresh:
    """A query's value and how fresh it is."""

    value: Any
    position: int
    as_of: datetime | None

    @property
    def age_seconds(self) -> float | None:
        if self.as_of is None:
            return None
        return round(max(0.0, (datetime.now(UTC) - self.as_of).total_seconds()), 3)


@dataclass
class ReadSide:
    """A database per read model for this API process (closed by the app's lifespan)."""

    dbs: dict[str, Database]

    @classmethod
    def open(cls, settings: Settings) -> ReadSide:
        return cls(
            {
                name: open_database(settings, name, pool_size=POOL_SIZES.get(name, 2))
                for name in PROJECTIONS
            }
        )

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()

    def read(
        self,
        projection: type[P],
        read: Callable[[Tx, P], T],
        min_position: int | None,
    ) -> Fresh:
        """`read` on the model's active generation once it reached `min_position` (bounded)."""

        def stamped(tx: Tx, view: P) -> tuple[T, str | None]:
            row = tx.one(
                "SELECT MIN(event_at) FROM projection_checkpoints WHERE name = ? "
                "AND generation = ?",
                (projection.name, view.generation),
            )
            return read(tx, view), (row[0] if row else None)

        try:
            found = answer(
                self.dbs[projection.name], projection, stamped, min_position, WAIT_SECONDS
            )
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable) as error:
            if "no such table" in str(error) or isinstance(error, psycopg.errors.UndefinedTable):
                raise ReadModelNotBuilt(projection.name) from error
            raise
        value, event_at = found.value
        as_of = datetime.fromisoformat(event_at) if event_at else None
        return Fresh(value, found.position, as_of)


# ---- cursors: opaque to clients, the last item's sort key to us ------------------------------


def encode_cursor(*key: str) -> str:
    return base64.urlsafe_b64encode("\n".join(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, parts: int) -> tuple[str, ...] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("this cursor was not handed out by this API") from None
    key = tuple(raw.split("\n"))
    if len(key) != parts:
        raise BadCursor("this cursor was not handed out by this API")
    return key


def page(
    items: list[T], key: Callable[[T], tuple[str, ...]], parts: int, after: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The `limit` items after cursor `after` in a list sorted by `key`, and the next cursor."""
    start = decode_cursor(after, parts)
    chosen = [item for item in items if start is None or key(item) > start]
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return chosen, (encode_cursor(*key(chosen[-1])) if more else None)


# ---- reads the projections do not offer (yet): thin functions over their tables -------------


def venue_known(tx: Tx, view: Projection, venue_id: str) -> bool:
    return (
        tx.one(f"SELECT 1 FROM {view.t['fridges']} WHERE venue_id = ? LIMIT 1", (venue_id,))
        is not None
    )


def city_known(tx: Tx, view: CityCatalogue, city_id: str) -> bool:
    return (
        tx.one(f"SELECT 1 FROM {view.t['venues']} WHERE city_id = ? LIMIT 1", (city_id,))
        is not None
    )


def city_venues(
    tx: Tx, view: CityCatalogue, city_id: str, after: str | None, limit: int
) -> list[tuple[str, str]]:
    """(venue id, name) of a city in venue-id order, `limit` after venue id `after`."""
    rows = tx.rows(
        f"SELECT venue_id, name FROM {view.t['venues']} WHERE city_id = ? AND venue_id > ? "
        "ORDER BY venue_id LIMIT ?",
        (city_id, after or "", limit),
    )
    return [(venue_id, name) for venue_id, name in rows]
