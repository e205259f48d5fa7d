"""Projections say what each event means; their views write the SQL.

Read from the handlers' source, so a handler that starts writing SQL again fails here even if
its rows stay right.
"""

from __future__ import annotations

import inspect
import re

import pytest

from projections.models import PROJECTIONS

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|execute)\b")
EVERY_MODEL = sorted(PROJECTIONS)


@pytest.mark.parametrize("name", EVERY_MODEL)
def test_a_handler_calls_views_and_writes_no_sql(name: str) -> None:
    projection = PROJECTIONS[name]
    for method_name in sorted(set(projection.handlers.values())):
        method = getattr(projection, method_name)
        assert not SQL.search(inspect.getsource(method)), f"{projection.__name__}.{method_name}"


@pytest.mark.parametrize("name", EVERY_MODEL)
def test_a_read_model_writes_through_views_of_its_own_tables(name: str) -> None:
    projection = PROJECTIONS[name]()
    views = list(projection.views())
    assert views, f"{name} has no views"
    assert all(view.t is projection.t for view in views)
