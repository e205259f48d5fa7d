"""Where read models live: one small interface over SQLite and PostgreSQL.

Every view writes the same portable SQL (`?` placeholders, `INSERT ... ON CONFLICT`, TEXT and
BIGINT columns); the two databases differ only in how they connect, lock and begin a
transaction, which is all this module knows. Prices, dates and moments are stored as TEXT
(two-decimal amounts, ISO dates, UTC ISO moments) so both databases answer byte for byte alike.
"""

# ruff: noqa: S608 - table and column names come from code, never from input; values are bound.

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

Row = tuple[Any, ...]


SCHEMA_CHANGES_LOCK = 0x46617266
"""Any constant will do, as long as every process creating read-model tables uses it."""

POOL_TIMEOUT_SECONDS = 2
"""Longest wait for a pooled connection before `PoolTimeout`: a pool that cannot hand one out
by then is a store that is unavailable (HTTP 503 at once), not a queue to wait half a minute
in. A whole number: the event store's pool takes the same wait (ops/connections.py)."""


def marks(values: Sized) -> str:
    """One bound placeholder per value, for `IN (...)` or a row of `VALUES` (`?, ?, ?`)."""
    return ", ".join("?" * len(values))


class Tx(ABC):
    """One open transaction on a read-model database."""

    max_params: ClassVar[int] = 8_000
    """Bound values per statement in `insert_rows` and `delete_rows` (both databases allow more)."""

    @abstractmethod
    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters, without waiting for each result."""

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        """`INSERT INTO table (columns) VALUES (...), (...) tail` in as few statements as the
        parameter limit allows. `tail` is e.g. an `ON CONFLICT` clause; with `DO UPDATE`, no
        two rows may share a key."""
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        for chunk in self._chunks(columns, rows):
            self.execute(f"{head}{self._values(columns, len(chunk))} {tail}".rstrip(), _flat(chunk))

    def delete_rows(
        self, table: str, columns: Sequence[str], keys: Sequence[Sequence[Any]]
    ) -> None:
        """Delete every row whose `columns` equal one of `keys` (no two alike), in as few
        statements as the parameter limit allows."""
        head = f"DELETE FROM {table} WHERE ({', '.join(columns)}) IN (VALUES "
        for chunk in self._chunks(columns, keys):
            self.execute(f"{head}{self._values(columns, len(chunk))})", _flat(chunk))

    def _chunks(
        self, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Iterator[Sequence[Sequence[Any]]]:
        per_statement = max(1, self.max_params // len(columns))
        for start in range(0, len(rows), per_statement):
            yield rows[start : start + per_statement]

    @staticmethod
    def _values(columns: Sequence[str], count: int) -> str:
        one = f"({marks(columns)})"
        return ", ".join([one] * count)

    @abstractmethod
    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; all its rows."""

    def one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        found = self.rows(statement, params)
        return found[0] if found else None

    @abstractmethod
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside undoes only what happened inside."""

    @abstractmethod
    def serialise_schema_changes(self) -> None:
        """Hold, until commit, the lock every Farmacy process takes to create tables."""

    @abstractmethod
    def table_names(self) -> list[str]:
        """Every table in this database (or schema)."""


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]


class Database(ABC):
    """A read-model database: transactions for workers, snapshots for queries."""

    kind: str

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: committed on success, rolled back on any error."""

    @abstractmethod
    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A read-only transaction that sees one consistent state across statements."""

    @abstractmethod
    @contextmanager
    def statement(self) -> Iterator[Tx]:
        """A connection outside any transaction, for reads of one statement each: a single
        statement sees one consistent state by itself, without a transaction's round trips."""

    @abstractmethod
    def close(self) -> None: ...


# ---- SQLite ------------------------------------------------------------------------------


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._depth = 0

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(statement, tuple(params)).rowcount

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(statement, [tuple(row) for row in rows])

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(statement, tuple(params)).fetchall()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._depth += 1
        name = f"sp{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def serialise_schema_changes(self) -> None:
        """SQLite already lets one writer at a time create tables."""

    def table_names(self) -> list[str]:
        found = self.rows("SELECT name FROM sqlite_master WHERE type='table'")
        return [name for (name,) in found]


def use_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Put the file in WAL mode. Switching takes a lock without waiting for the busy timeout,
    so two processes opening a new file at once can see "database is locked": the switch is
    made only when needed, and retried for up to about two seconds."""
    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)  # another connection is switching the same file right now


class SQLiteDatabase(Database):
    """One SQLite file (WAL) per projection; a connection per thread."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            use_wal(conn)
            # With WAL, NORMAL survives a killed process; only a power cut may lose the
            # newest batch, and then its checkpoint goes with it.
            conn.execute("PRAGMA synchronous=NORMAL")
            # A multi-row write keeps a statement journal; in a temporary file, creating and
            # removing it cost a batch of orders more than writing its rows one by one.
            conn.execute("PRAGMA temp_store=MEMORY")
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield _SQLiteTx(conn)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def statement(self) -> Iterator[Tx]:
        yield _SQLiteTx(self._conn())

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


# ---- PostgreSQL --------------------------------------------------------------------------


class _PostgresTx(Tx):
    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        cursor = self.conn.execute(statement.replace("?", "%s"), tuple(params))
        return int(cursor.rowcount)

    def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """psycopg sends the rows in pipeline mode: one round trip, not one per row."""
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(statement.replace("?", "%s"), [tuple(row) for row in rows])

    # Many rows travel as one array per column, unnested by the server: the statement's text
    # does not depend on the number of rows (psycopg parses it once) and there is no parameter
    # limit. Each is planned with its values (`prepare=False`): a generic plan made while a
    # new generation's table was tiny would scan the whole table ever after.

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        if rows:
            statement = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT * FROM unnest({_arrays(rows[0])}) {tail}"
            )
            self.conn.execute(statement.rstrip(), _columns(rows), prepare=False)

    def delete_rows(
        self, table: str, columns: Sequence[str], keys: Sequence[Sequence[Any]]
    ) -> None:
        if keys:
            names = [f"k{n}" for n in range(len(columns))]
            match = " AND ".join(
                f"{table}.{c} = k.{n}" for c, n in zip(columns, names, strict=True)
            )
            statement = (
                f"DELETE FROM {table} USING unnest({_arrays(keys[0])}) AS k({', '.join(names)}) "
                f"WHERE {match}"
            )
            self.conn.execute(statement, _columns(keys), prepare=False)

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.conn.execute(statement.replace("?", "%s"), tuple(params))
        return list(cursor.fetchall())

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def serialise_schema_changes(self) -> None:
        """Concurrent CREATE ... IF NOT EXISTS of one table trips PostgreSQL's catalog
        (duplicate pg_type rows): whoever creates tables holds this lock until commit."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_CHANGES_LOCK,))

    def table_names(self) -> list[str]:
        found = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            (self.schema,),
        )
        return [name for (name,) in found]


def _arrays(example: Sequence[Any]) -> str:
    """Placeholders for one array per column: BIGINT for Python ints, TEXT otherwise (every
    read-model column is one or the other). The arrays travel in binary (`%b`): psycopg
    builds a text array in Python, element by element, which cost a worker about a third
    more CPU per statement (docs/benchmarks.md, issue 18: CPU per order)."""
    return ", ".join(
        "%b::bigint[]" if isinstance(value, int) else "%b::text[]" for value in example
    )


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresDatabase(Database):
    """Read models in one PostgreSQL schema, through a small connection pool. Every read model
    of a process can share one (ops/connections.py sizes it)."""

    kind = "postgres"

    def __init__(
        self,
        dsn: str,
        schema: str = "",
        *,
        max_size: int = 4,
        timeout: float = POOL_TIMEOUT_SECONDS,
    ) -> None:
        self.dsn = dsn
        self.schema = schema or "public"

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

        self.pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": 5},
            configure=configure,
            timeout=timeout,
            open=True,
        )

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn, self.schema)

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield _PostgresTx(conn, self.schema)
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def statement(self) -> Iterator[Tx]:
        with self.pool.connection() as conn:  # autocommit: each statement on its own
            yield _PostgresTx(conn, self.schema)

    def lock_key(self, name: str) -> int:
        """A 63-bit advisory lock key for `name` in this schema (schemas never share locks)."""
        return zlib.crc32(f"{self.schema}:{name}".encode()) | (0x46 << 32)

    def close(self) -> None:
        self.pool.close()
