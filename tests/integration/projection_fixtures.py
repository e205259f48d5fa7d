"""Fixtures for projection tests: read-model databases on the store under test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ops.root import open_database
from ops.settings import Settings
from projections.database import Database

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
