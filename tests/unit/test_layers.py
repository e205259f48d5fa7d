"""Who may import whom: the composition root knows everything, nothing below it knows it.

Read from the source files with `ast`, so a forbidden import fails here even if no test
happens to run the module that holds it.
"""

from __future__ import annotations

import ast
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
