"""Projections say what each event means; their views write the SQL.

Read from the handlers' source, so a handler that starts writing SQL again fails here even if
its rows stay right.
"""

from __future__ import annotations

import inspect
import re

import pytest

from projections.models import PROJECTIONS
from projections.stock import StockKeeping

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|execute)\b")
STOCK_FAMILY = sorted(name for name, cls in PROJECTIONS.items() if issubclass(cls, StockKeeping))
NOT_YET_SPLIT = {"projections.reference"}  # meal and venue rows: handlers still write SQL


@pytest.mark.parametrize("name", STOCK_FAMILY)
def test_a_stock_family_handler_calls_views_and_writes_no_sql(name: str) -> None:
    projection = PROJECTIONS[name]
    for method_name in sorted(set(projection.handlers.values())):
        method = getattr(projection, method_name)
        if method.__module__ in NOT_YET_SPLIT:
            continue
        assert not SQL.search(inspect.getsource(method)), f"{projection.__name__}.{method_name}"


@pytest.mark.parametrize("name", STOCK_FAMILY)
def test_a_stock_family_model_writes_through_views_of_its_own_tables(name: str) -> None:
    projection = PROJECTIONS[name]()
    views = list(projection.views())
    assert views, f"{name} has no views"
    assert all(view.t is projection.t for view in views)
