"""Per-key versions of a read model: the position at which each key's answer last changed.

A model that keeps them (`Versioned`) names what its answers are keyed by: the venue menu by
venue, the city catalogue by city, the fridge stock by fridge. Its `versions` view writes
them in the same transaction as its rows and its checkpoint, so a reader that sees a key's
version unchanged knows that nothing that key's answer shows has moved, and an API process
can answer it from memory (`Remembered`). A change to what every answer shows (a meal's
name or price) is written under `EVERY`.

`VersionsSeen` is what one poll of the model learns, in one statement: where the model stands
(`ReadState`) and every key's version; `VersionWatch.poll` reads only the versions written
since the previous poll, so a poll stays cheap however many keys there are.
"""

# ruff: noqa: S608 - table and column names come from code, never from input; values are bound.

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Generic, TypeVar

from eventsourcing.utils import resolve_topic

from domain.shelf import local_day
from projections.database import Database, Tx, marks
from projections.freshness import ReadState
from projections.projection import Projection, Shard, View

T = TypeVar("T")

EVERY = "*"
"""The version row of what every key's answer shows (the meals' names, prices, details)."""


def version_tables(key: str) -> dict[str, str]:
    """The `versions` table of a model keyed by the column `key`."""
    return {
        "versions": f"shard TEXT, {key} TEXT, position BIGINT NOT NULL, PRIMARY KEY (shard, {key})"
    }


class VersionRows(View):
    """The `versions` table of one shard: a key's row moves to the position of each event
    that changed what its answer shows (kept over a batch, written at `flush`)."""

    def __init__(self, t: dict[str, str], shard: str, key: str) -> None:
        super().__init__(t)
        self.shard = shard
        self.key = key
        self._changed: dict[str, int] = {}

    def changed(self, key: str, position: int) -> None:
        self._changed[key] = max(position, self._changed.get(key, 0))

    def forget(self) -> None:
        self._changed.clear()

    def flush(self, tx: Tx) -> None:
        if not self._changed:
            return
        rows = [(self.shard, key, position) for key, position in sorted(self._changed.items())]
        tx.insert_rows(
            self.t["versions"],
            ("shard", self.key, "position"),
            rows,
            f"ON CONFLICT (shard, {self.key}) DO UPDATE SET position = excluded.position",
        )
        self._changed.clear()


class Versioned(Projection):
    """A read model that keeps per-key versions (`version_key` names the column): after each
    event a handler takes, the key `changes` names moves to that event's position."""

    version_key: ClassVar[str]

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.versions = VersionRows(self.t, str(self.shard), self.version_key)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.versions)

    def wants(self, topic: str) -> bool:
        """Only the events a handler takes, although `apply` is overridden."""
        wanted = self._wanted.get(topic)
        if wanted is None:
            wanted = self._wanted[topic] = resolve_topic(topic) in self.handlers
        return wanted

    def changes(self, event: object, tx: Tx) -> str | None:
        """The key whose answer `event` changed (EVERY: every key's; None: none here)."""
        raise NotImplementedError

    def apply(self, event: object, tx: Tx, position: int) -> None:
        """Apply the event, and move the version of the key whose answer it changes."""
        if type(event) not in self.handlers:
            return
        super().apply(event, tx, position)
        key = self.changes(event, tx)
        if key is not None:
            self.versions.changed(key, position)


def version_of(tx: Tx, t: Mapping[str, str], column: str, key: str) -> int:
    """The key's version in this snapshot (0: unchanged since versions were first kept)."""
    return versions_of(tx, t, column, [key])[key]


def versions_of(tx: Tx, t: Mapping[str, str], column: str, keys: Sequence[str]) -> dict[str, int]:
    """Each key's version in this snapshot: its own row's or `EVERY`'s, whichever is newer."""
    rows = tx.rows(
        f"SELECT {column}, MAX(position) FROM {t['versions']} "
        f"WHERE {column} IN ({marks(keys)}, ?) GROUP BY {column}",
        (*keys, EVERY),
    )
    found = {str(key): int(position) for key, position in rows if position is not None}
    every = found.get(EVERY, 0)
    return {key: max(found.get(key, 0), every) for key in keys}


@dataclass(frozen=True)
class VersionsSeen:
    """One poll: where the model stood and every key's version then (never changed after)."""

    state: ReadState
    versions: Mapping[str, int] = field(default_factory=dict)

    def version(self, key: str) -> int:
        return max(self.versions.get(key, 0), self.versions.get(EVERY, 0))


POLL_QUERY = (
    "SELECT 's', c.shard, c.position, c.event_at FROM projection_checkpoints c "
    "WHERE c.name = ? AND c.generation = ? "
    "UNION ALL SELECT 'g', NULL, g.active, NULL FROM projection_generations g WHERE g.name = ? "
    "UNION ALL SELECT 'v', v.{key}, MAX(v.position), NULL FROM {versions} v "
    "WHERE v.position > ? GROUP BY v.{key}"
)


class VersionWatch:
    """Follows a versioned model's checkpoints and versions, one statement per `poll`.

    Rows a batch writes are above its shard's checkpoint before the batch, hence above the
    lowest checkpoint the previous poll saw: each poll reads the versions above that, and
    all of them when the active generation or the set of shards changed.
    """

    def __init__(self, db: Database, model: type[Versioned]) -> None:
        self.db = db
        self.name = model.name
        self.key = model.version_key
        self.model = model
        self.seen: VersionsSeen | None = None
        self.ahead: Callable[[VersionsSeen], object] | None = None
        """Called with a poll that saw changes before the poll is trusted (`seen`)."""

    def poll(self) -> VersionsSeen | None:
        """What the model holds now (None: the generation switched while it was read)."""
        before = self.seen
        if before is None:
            return self._start(1)
        state, changes = self._read(before.state.generation, before.state.position)
        if state.generation != before.state.generation or shards(state) != shards(before.state):
            return self._start(state.generation)
        versions: Mapping[str, int] = before.versions
        if changes:
            merged = dict(versions)
            for key, position in changes.items():
                merged[key] = max(position, merged.get(key, 0))
            versions = merged
        seen = VersionsSeen(state, versions)
        if changes and self.ahead is not None:
            self.ahead(seen)
        self.seen = seen
        return seen

    def _start(self, generation: int) -> VersionsSeen | None:
        state, versions = self._read(generation, -1)
        self.seen = VersionsSeen(state, versions) if state.generation == generation else None
        return self.seen

    def _read(self, generation: int, since: int) -> tuple[ReadState, dict[str, int]]:
        with self.db.statement() as tx:
            rows = tx.rows(
                POLL_QUERY.format(versions=self.model.table("versions", generation), key=self.key),
                (self.name, generation, self.name, since),
            )
        active = next((int(position) for kind, _, position, _ in rows if kind == "g"), 1)
        found = sorted(
            (str(shard), int(position)) for kind, shard, position, _ in rows if kind == "s"
        )
        moments = [str(at) for kind, _, _, at in rows if kind == "s" and at is not None]
        state = ReadState(
            active,
            min((position for _, position in found), default=0),
            min(moments) if moments else None,
            (active, tuple(found)),
        )
        changes = {str(key): int(position) for kind, key, position, _ in rows if kind == "v"}
        return state, changes


def shards(state: ReadState) -> list[str]:
    return [shard for shard, _ in state.key[1]]


# ---- answers kept by key, served while the key's version stands ------------------------------


def newest(read_at: ReadState, version: int, seen: VersionsSeen, key: str) -> bool:
    """Whether an answer read at `read_at`, when the key's version was `version`, is as new
    as anything the poll `seen` knows of the key: the key has not changed since (the same
    version), or the answer was read after the poll (a higher position, or the same state).
    Under a stream of writes every poll shows a new version of a busy key, and its answer is
    read again once per poll and process, not on every request."""
    return (
        version == seen.version(key)
        or read_at.position > seen.state.position
        or read_at.key == seen.state.key
    )


def local_days(now: datetime, timezones: tuple[str, ...]) -> tuple[date, ...]:
    return tuple(local_day(now, timezone) for timezone in timezones)


@dataclass(frozen=True)
class Kept(Generic[T]):
    value: T
    version: int  # the key's version in the snapshot it was read in
    read_at: ReadState  # the model's state it was read at
    days: tuple[date, ...]  # the local days of `timezones` when it was read
    timezones: tuple[str, ...]  # of the fridges whose stock it shows (fresh is by local day)


class Remembered(Generic[T]):
    """The newest answer read for each of up to `size` keys, with the key's version and the
    model's state it was read at (the least recently used key forgotten first; thread-safe:
    PostgreSQL reads run in worker threads).

    An answer is served again only on the same local days of its fridges (what is fresh
    depends on them) and either at exactly the state it was read at (`at`) or while the
    key's version the API's last poll saw is the one it was read with (`current`): then the
    model showed exactly that answer at both states, and it is stamped with the newer one.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._kept: OrderedDict[str, Kept[T]] = OrderedDict()
        self._lock = threading.Lock()
        self.from_memory = 0  # answered without the database

    def __len__(self) -> int:
        return len(self._kept)

    def keep(
        self,
        key: str,
        value: T,
        version: int,
        state: ReadState,
        timezones: tuple[str, ...],
        now: datetime,
    ) -> None:
        """Keep `value`, read at `state` (unknown keys are not kept: see the callers)."""
        entry = Kept(value, version, state, local_days(now, timezones), timezones)
        with self._lock:
            self._kept[key] = entry
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def _fits(self, key: str, now: datetime) -> Kept[T] | None:
        found = self._kept.get(key)
        if found is None or local_days(now, found.timezones) != found.days:
            return None
        return found

    def at(self, state: ReadState, key: str, now: datetime) -> T | None:
        """The key's answer if it was read at exactly `state` (on the same local days)."""
        with self._lock:
            found = self._fits(key, now)
            if found is None or found.read_at.key != state.key:
                return None
            self._kept.move_to_end(key)
            return found.value

    def current(
        self, seen: VersionsSeen | None, key: str, now: datetime, min_position: int | None
    ) -> tuple[T, ReadState] | None:
        """The key's answer if nothing `seen` knows is newer than it (`newest`) and `seen`
        reached `min_position`: with the newer of the two states."""
        if seen is None or (min_position is not None and seen.state.position < min_position):
            return None
        with self._lock:
            found = self._fits(key, now)
            if (
                found is None
                or found.read_at.generation != seen.state.generation
                or not newest(found.read_at, found.version, seen, key)
            ):
                return None
            self._kept.move_to_end(key)
            self.from_memory += 1
        return found.value, max(found.read_at, seen.state, key=lambda state: state.position)


Seen = Callable[[], VersionsSeen | None]
"""The API's last trusted poll of a model's versions (None: none, or too old)."""
