"""Fixtures for projection tests: read-model databases on the store under test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime

import msgspec
import pytest

from interfaces.http.menu_cache import MenuCache
from interfaces.http.reading import ReadSide
from interfaces.http.schemas import MenuEntry
from ops.root import open_database
from ops.settings import Settings
from projections.database import Database
from projections.freshness import WAIT_TIMEOUT, Answer

OpenModels = Callable[[str], Database]
"""What the `models` fixture gives: open a read-model database by projection name."""


@pytest.fixture
def models(store_settings: Settings) -> Iterator[OpenModels]:
    """Open read-model databases by projection name; all closed after the test."""
    opened: list[Database] = []

    def open_named(name: str) -> Database:
        db = open_database(store_settings, name)
        opened.append(db)
        return db

    yield open_named
    for db in opened:
        db.close()


OpenReads = Callable[..., ReadSide]
"""What the `reads` fixture gives: the API's read side over read-model databases."""


@pytest.fixture
def reads() -> Iterator[OpenReads]:
    """The API's own `ReadSide` over `{name: db}`, so a test asks each model through the query
    object the routes use (`read.fridge_stock.stock(...)`); closed after the test."""
    opened: list[ReadSide] = []

    def read_side(dbs: dict[str, Database], wait_seconds: float = WAIT_TIMEOUT) -> ReadSide:
        read = ReadSide(dbs, wait_seconds=wait_seconds)
        opened.append(read)
        return read

    yield read_side
    for read in opened:
        read.close()


def venue_menu(
    read: ReadSide,
    venue_id: str,
    now: datetime,
    min_position: int | None = None,
    cache: MenuCache | None = None,
) -> Answer[list[MenuEntry]]:
    """The venue menu as `GET /venues/{venue_id}/menu` reads it (query object and cache), its
    items decoded as a client decodes them."""
    answer = asyncio.run(read.venue_menu.menu(venue_id, now, min_position, cache or MenuCache()))
    items = msgspec.json.decode(answer.value.items, type=list[MenuEntry])
    return Answer(items, answer.position, answer.as_of)
