"""Per-venue versions of the venue menu: the position at which each venue's menu last changed.

The venue menu view writes them in the same transaction as its rows and its checkpoint, so a
reader that sees a venue's version unchanged knows that nothing its menu shows has moved, and
an API process can answer that menu from memory. A change to the meals (a name, a price)
changes every menu: it is written under `EVERY_VENUE`.

`VersionsSeen` is what one poll of the model learns, in one statement: where the model stands
(`ReadState`) and every venue's version; `VenueVersionWatch.poll` reads only the versions
written since the previous poll, so a poll stays cheap however many venues there are.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from projections.database import Database, Tx
from projections.freshness import ReadState
from projections.projection import View

EVERY_VENUE = "*"
"""The version row of what every venue's menu shows (the meals' names, prices, details)."""

VERSION_TABLES = {
    "versions": (
        "shard TEXT, venue_id TEXT, position BIGINT NOT NULL, PRIMARY KEY (shard, venue_id)"
    ),
}


class VenueVersionRows(View):
    """The `versions` table of one shard: a venue's row moves to the position of each event
    that changed what its menu shows (kept over a batch, written at `flush`)."""

    def __init__(self, t: dict[str, str], shard: str) -> None:
        super().__init__(t)
        self.shard = shard
        self._changed: dict[str, int] = {}

    def changed(self, venue_id: str, position: int) -> None:
        self._changed[venue_id] = max(position, self._changed.get(venue_id, 0))

    def forget(self) -> None:
        self._changed.clear()

    def flush(self, tx: Tx) -> None:
        if not self._changed:
            return
        rows = [(self.shard, venue, position) for venue, position in sorted(self._changed.items())]
        tx.insert_rows(
            self.t["versions"],
            ("shard", "venue_id", "position"),
            rows,
            "ON CONFLICT (shard, venue_id) DO UPDATE SET position = excluded.position",
        )
        self._changed.clear()


def venue_version(tx: Tx, t: Mapping[str, str], venue_id: str) -> int:
    """The venue's version in this snapshot (0: unchanged since versions were first kept)."""
    row = tx.one(
        f"SELECT MAX(position) FROM {t['versions']} WHERE venue_id IN (?, ?)",
        (venue_id, EVERY_VENUE),
    )
    return int(row[0]) if row and row[0] is not None else 0


@dataclass(frozen=True)
class VersionsSeen:
    """One poll: where the model stood and every venue's version then (never changed after)."""

    state: ReadState
    versions: Mapping[str, int] = field(default_factory=dict)

    def version(self, venue_id: str) -> int:
        return max(self.versions.get(venue_id, 0), self.versions.get(EVERY_VENUE, 0))


POLL_QUERY = (
    "SELECT 's', c.shard, c.position, c.event_at FROM projection_checkpoints c "
    "WHERE c.name = ? AND c.generation = ? "
    "UNION ALL SELECT 'g', NULL, g.active, NULL FROM projection_generations g WHERE g.name = ? "
    "UNION ALL SELECT 'v', v.venue_id, MAX(v.position), NULL FROM {versions} v "
    "WHERE v.position > ? GROUP BY v.venue_id"
)


class VenueVersionWatch:
    """Follows a venue menu model's checkpoints and versions, one statement per `poll`.

    Rows a batch writes are above its shard's checkpoint before the batch, hence above the
    lowest checkpoint the previous poll saw: each poll reads the versions above that, and
    all of them when the active generation or the set of shards changed.
    """

    def __init__(self, db: Database, name: str, table: Callable[[int], str]) -> None:
        self.db = db
        self.name = name
        self.table = table  # generation -> that generation's `versions` table
        self.seen: VersionsSeen | None = None

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
            for venue, position in changes.items():
                merged[venue] = max(position, merged.get(venue, 0))
            versions = merged
        self.seen = VersionsSeen(state, versions)
        return self.seen

    def _start(self, generation: int) -> VersionsSeen | None:
        state, versions = self._read(generation, -1)
        self.seen = VersionsSeen(state, versions) if state.generation == generation else None
        return self.seen

    def _read(self, generation: int, since: int) -> tuple[ReadState, dict[str, int]]:
        with self.db.statement() as tx:
            rows = tx.rows(
                POLL_QUERY.format(versions=self.table(generation)),
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
        changes = {str(venue): int(position) for kind, venue, position, _ in rows if kind == "v"}
        return state, changes


def shards(state: ReadState) -> list[str]:
    return [shard for shard, _ in state.key[1]]
