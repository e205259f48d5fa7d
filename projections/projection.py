"""What every read model has in common: its tables, its shard, its handlers, its bookkeeping.

A projection's tables are named `<projection>_g<generation>_<table>`. The generation in use is
recorded in `projection_generations`; a side-by-side rebuild fills the next generation while
readers keep using the current one, then moves the pointer in one transaction. Each
(projection, generation, shard) has one checkpoint row, written in the same transaction as
the data it covers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from eventsourcing.utils import resolve_topic

from projections.database import Tx

BOOKKEEPING = {
    "projection_generations": "name TEXT PRIMARY KEY, active BIGINT NOT NULL",
    "projection_checkpoints": (
        "name TEXT, generation BIGINT, shard TEXT, position BIGINT NOT NULL, "
        "event_at TEXT, updated_at TEXT, error TEXT, PRIMARY KEY (name, generation, shard)"
    ),
    "projection_dead_letters": (
        "name TEXT, generation BIGINT, shard TEXT, position BIGINT, topic TEXT, error TEXT, "
        "parked_at TEXT, PRIMARY KEY (name, generation, shard, position)"
    ),
    "projection_workers": (
        "name TEXT, shard TEXT, worker TEXT, role TEXT, seen_at TEXT, "
        "PRIMARY KEY (name, shard, worker)"
    ),
}


def utc_iso(moment: datetime) -> str:
    """A moment as sortable text: always UTC, always microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return utc_iso(datetime.now(UTC))


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (`--shard 2/8`): a stable hash of a venue, fridge or order."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count or 1))
        if not 0 <= shard.index < shard.count:
            raise ValueError(f"shard {text!r}: need K/N with 0 <= K < N")
        return shard

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        return self.count == 1 or zlib.crc32(key.encode()) % self.count == self.index


H = TypeVar("H", bound=Callable[..., None])


def handles(*event_types: type) -> Callable[[H], H]:
    """Mark a method as the handler of these event classes (matched exactly)."""

    def mark(method: H) -> H:
        method._handles = event_types  # type: ignore[attr-defined]
        return method

    return mark


class View:
    """The rows of a read model's tables, in the read model's words: the only place their SQL
    is written. A projection decides what each event means and calls its views' methods.

    A view may keep what a batch changes in memory and write it at `flush`, in the batch's
    transaction; `forget` drops whatever it kept when that transaction is rolled back.
    """

    def __init__(self, t: dict[str, str]) -> None:
        self.t = t  # short table name -> the generation's table name

    def flush(self, tx: Tx) -> None:
        """Write what this view kept back while a batch was applied."""

    def forget(self) -> None:
        """Drop what this view keeps in memory."""


class Projection:
    """A read model: its tables, and one handler per event type it cares about.

    Subclasses declare `name`, `tables` (short name -> column DDL) and `@handles(...)` methods
    (inherited handlers included); every other event is ignored (the checkpoint still moves)
    and the runner does not even decode it (`wants`).
    `policy` is "stop" (a poison event stops the shard) or "park" (it goes to the dead letters).
    `transient` names failures of its own that are not the event's fault (tried again later).
    """

    name: ClassVar[str]
    tables: ClassVar[dict[str, str]]
    indexes: ClassVar[dict[str, str]] = {}  # index suffix -> "table(columns)"
    policy: ClassVar[str] = "stop"
    transient: ClassVar[tuple[type[Exception], ...]] = ()
    handlers: ClassVar[dict[type, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                for event_type in getattr(value, "_handles", ()):
                    cls.handlers[event_type] = attribute

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        self.generation = generation
        self.shard = shard or Shard()
        self.t = {short: self.table(short, generation) for short in self.tables}
        self._wanted: dict[str, bool] = {}  # topic -> whether `apply` may act on it

    @classmethod
    def table(cls, short: str, generation: int) -> str:
        return f"{cls.name}_g{generation}_{short}"

    def create_tables(self, tx: Tx) -> None:
        for short, columns in self.tables.items():
            tx.execute(f"CREATE TABLE IF NOT EXISTS {self.t[short]} ({columns})")
        for suffix, target in self.indexes.items():
            table, _, columns = target.partition("(")
            tx.execute(
                f"CREATE INDEX IF NOT EXISTS {self.t[table]}_{suffix} ON {self.t[table]} ({columns}"
            )

    def drop_tables(self, tx: Tx) -> None:
        for short in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {self.t[short]}")

    def views(self) -> Iterable[View]:
        """The views this projection writes through, which `flush` and `forget` reach (none
        unless a subclass says so)."""
        return ()

    def forget(self) -> None:
        """Drop in-memory caches and whatever `flush` has not written yet: called when a batch
        is rolled back, so memory never holds what the tables lost."""
        for view in self.views():
            view.forget()

    def flush(self, tx: Tx) -> None:
        """Write what the views buffered while applying a batch; the runner calls it in the
        batch's transaction before moving the checkpoint (and after each event when it applies
        a failed batch again one by one)."""
        for view in self.views():
            view.flush(tx)

    def wants(self, topic: str) -> bool:
        """Whether `apply` may act on an event of this topic: the runner decodes no other (a
        worker's runners each read every event, so decoding is most of what they spend). A
        projection that overrides `apply` is handed every event. A topic that names no class
        raises, as decoding it would."""
        wanted = self._wanted.get(topic)
        if wanted is None:
            generic = type(self).apply is not Projection.apply
            wanted = self._wanted[topic] = generic or resolve_topic(topic) in self.handlers
        return wanted

    def apply(self, event: object, tx: Tx, position: int) -> None:
        """Apply one event inside the batch's transaction. Unknown events are ignored."""
        handler = self.handlers.get(type(event))
        if handler is not None:
            getattr(self, handler)(event, tx, position)


def create_bookkeeping(tx: Tx) -> None:
    tx.serialise_schema_changes()
    for table, columns in BOOKKEEPING.items():
        tx.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def active_generation(tx: Tx, name: str) -> int:
    row = tx.one("SELECT active FROM projection_generations WHERE name = ?", (name,))
    return int(row[0]) if row else 1


def checkpoint(tx: Tx, name: str, generation: int, shard: Shard) -> int | None:
    row = tx.one(
        "SELECT position FROM projection_checkpoints WHERE name = ? AND generation = ? "
        "AND shard = ?",
        (name, generation, str(shard)),
    )
    return None if row is None else int(row[0])
