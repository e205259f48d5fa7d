"""Fixtures that run store-dependent tests on every store: SQLite, PostgreSQL, KurrentDB.

PostgreSQL: each test session creates a database of its own and drops it at the end; each
test gets a schema of its own in it. Where no server answers, those tests are skipped and the
run says so loudly; with CI=true an unreachable PostgreSQL fails the run instead.
KurrentDB: runs only where KURRENTDB_URI is set (no server can be installed here).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ops.root import WriteSide, build_write_side
from ops.settings import Settings

ADMIN_DSN = os.environ.get(
    "FARMACY_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
STORES = ["sqlite", "postgres", "kurrentdb"]

_postgres_problem: list[str] = []


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None. Asked once per session."""
    if not _postgres_problem:
        try:
            with psycopg.connect(ADMIN_DSN, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _postgres_problem.append("")
        except Exception as error:
            _postgres_problem.append(f"PostgreSQL at {ADMIN_DSN} is unreachable: {error}".strip())
    return _postgres_problem[0] or None


def skipped_for_postgres(terminalreporter: pytest.TerminalReporter) -> str | None:
    """The reason PostgreSQL's tests were skipped, read from the skips themselves: under
    pytest-xdist (`make test` runs two workers) the workers asked, not this process."""
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if "PostgreSQL at" in reason and "unreachable" in reason:
            return reason.removeprefix("Skipped: ")
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    problem = postgres_problem() if _postgres_problem else skipped_for_postgres(terminalreporter)
    if problem:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        terminalreporter.write_line(
            f"POSTGRESQL TESTS WERE SKIPPED: {problem}", red=True, bold=True
        )
        terminalreporter.write_line(bar, red=True, bold=True)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this session's own, dropped afterwards. Its DSN."""
    problem = postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and {problem}", pytrace=False)
        pytest.skip(problem)
    name = f"farmacy_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_schema(postgres_database: str) -> Iterator[tuple[str, str]]:
    """A schema of this test's own in the session's database: (dsn, schema)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield postgres_database, schema
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def settings_for(store: str, request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    if store == "sqlite":
        return Settings(store="sqlite", data_dir=tmp_path)  # type: ignore[arg-type]
    if store == "postgres":
        dsn, schema = request.getfixturevalue("postgres_schema")
        return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema)
    uri = os.environ.get("KURRENTDB_URI")
    if not uri:
        pytest.skip("KURRENTDB_URI is not set: no KurrentDB server to test against")
    return Settings(store="kurrentdb", kurrentdb_uri=uri)


@pytest.fixture(params=STORES)
def store_settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    """Settings for a fresh, empty store of each kind in turn."""
    return settings_for(request.param, request, tmp_path)


@dataclass
class FakeClock:
    """A clock tests move by hand: the domain never reads the time itself."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 21, 11, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def side(store_settings: Settings, clock: FakeClock) -> Iterator[WriteSide]:
    side = build_write_side(store_settings, clock=clock)
    yield side
    side.close()


def unique(prefix: str) -> str:
    """Ids unique per test, so tests never meet each other's streams (KurrentDB is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
