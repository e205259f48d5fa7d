"""Who may import whom: the composition root knows everything, nothing below it knows it.

Read from the source files with `ast`, so a forbidden import fails here even if no test
happens to run the module that holds it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RUNNERS = {
    "application.fulfilment_runner",
    "application.snapshots",
    "projections.trails",
}
"""The long-running processes' loops: only the composition root starts them."""


def imported(package: str) -> dict[str, set[str]]:
    """Every module each file of `package` imports (absolute names), by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def module_of(path: str) -> str:
    return Path(path).with_suffix("").as_posix().replace("/", ".")


def offending(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        path: sorted(n for n in names if n.split(".")[0] in forbidden)
        for path, names in imported(package).items()
        if any(n.split(".")[0] in forbidden for n in names)
    }


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("domain", ("application", "projections", "interfaces", "ops")),
        ("application", ("projections", "interfaces", "ops")),
        ("projections", ("application", "interfaces", "ops")),
    ],
)
def test_nothing_below_the_root_imports_what_is_above_it(
    package: str, forbidden: tuple[str, ...]
) -> None:
    assert offending(package, forbidden) == {}


def test_only_the_root_starts_the_long_running_processes() -> None:
    starters = {
        path
        for package in ("application", "projections", "interfaces", "ops")
        for path, names in imported(package).items()
        if names & RUNNERS and module_of(path) not in RUNNERS
    }
    assert starters == {"ops/root.py"}


def test_interfaces_open_stores_and_read_models_only_through_the_root() -> None:
    openers = {
        "ops.stores",
        "ops.postgres_events",
        "projections.database.SQLiteDatabase",
        "projections.database.PostgresDatabase",
    }
    found = {
        path: sorted(names & openers)
        for path, names in imported("interfaces").items()
        if names & openers
    }
    assert found == {}


PRODUCTION = ("domain", "application", "projections", "interfaces", "ops")

SQL = re.compile(
    r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)"
    r"|DROP\s+TABLE|ALTER\s+TABLE)"
)


def strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a file (f-strings by their literal parts), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_interfaces_write_no_sql() -> None:
    """Queries belong to the read model that owns the table (projections/), never the door."""
    found = {
        f"{path.relative_to(ROOT)}:{line}": text
        for path in sorted((ROOT / "interfaces").rglob("*.py"))
        for line, text in strings(path)
        if SQL.search(text)
    }
    assert found == {}


def test_the_sql_check_sees_sql_in_an_f_string(tmp_path: Path) -> None:
    sample = tmp_path / "door.py"
    sample.write_text('def f(t):\n    return f"SELECT venue_id FROM {t} WHERE city_id = ?"\n')
    assert [line for line, text in strings(sample) if SQL.search(text)] == [2]


def names_used(path: Path) -> set[str]:
    """The names a file uses (loads, attributes, imports, bases), not the ones it defines."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            used.update(alias.name.split(".")[-1] for alias in node.names)
    return used


def test_every_production_class_is_used_by_production_code() -> None:
    """A class only tests call is a side door: tests would pass while what production runs
    breaks. Each top-level class of a production module is named by some production code."""
    files = [path for package in PRODUCTION for path in sorted((ROOT / package).rglob("*.py"))]
    used = set().union(*(names_used(path) for path in files))
    unused = {
        f"{path.relative_to(ROOT)}:{node.name}"
        for path in files
        for node in ast.parse(path.read_text(), str(path)).body
        if isinstance(node, ast.ClassDef) and node.name not in used
    }
    assert unused == set()
