"""Rebuild a read model from zero into a new generation of its tables, then switch to it.

Readers keep reading the current generation while the next one is built; the switch is one
transaction that moves the `projection_generations` pointer and gives the new generation a
checkpoint for every shard the current one had, at the position the rebuild reached. Running
workers notice the switch at their next batch and carry on in the new generation from there.
So no reader ever sees an empty or half-built model.

A plain rebuild drops the old generation's tables once it has switched; `side_by_side` keeps
them (drop them later with `drop_generation`) and compares the two generations first.
"""

# ruff: noqa: S608 - table names come from code, never from input; values are bound.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projections.database import Database, Tx
from projections.models import projection_named
from projections.projection import (
    Projection,
    Shard,
    active_generation,
    create_bookkeeping,
    now_iso,
)
from projections.runner import Runner, prepare
from projections.source import EventSource

REBUILD_BATCH = 20_000
"""Events per rebuild transaction. Nobody reads a generation before the switch, so long
transactions cost only memory (one batch of decoded events, about 100 MB) and a longer redo
after a crash, and they let a stock-keeping view net more: most reservations are released
within a few thousand events, so their holds are never written at all."""


@dataclass
class Rebuilt:
    """What a rebuild did."""

    name: str
    old_generation: int
    new_generation: int
    position: int
    events: int
    row_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (old, new)
    dropped_old: bool = False


def next_generation(tx: Tx, name: str) -> int:
    row = tx.one("SELECT MAX(generation) FROM projection_checkpoints WHERE name = ?", (name,))
    highest = int(row[0]) if row and row[0] is not None else 0
    return max(highest, active_generation(tx, name)) + 1


def rebuild(
    store: EventSource,
    db: Database,
    name: str,
    *,
    side_by_side: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    batch_size: int = REBUILD_BATCH,
) -> Rebuilt:
    """Replay every event into a new generation of `name`, then switch readers to it.

    `progress(done, total)` is called after each batch (total is the head when it started).
    """
    cls = projection_named(name)
    with db.transaction() as tx:
        create_bookkeeping(tx)
        old = active_generation(tx, name)
        new = next_generation(tx, name)
    prepare(db, cls(old))  # a model never run before still gets its generation row
    runner = Runner(store, db, cls, Shard(), generation=new, batch_size=batch_size)
    total = runner.head()
    done = runner.catch_up(
        None if progress is None else lambda read: progress(read, max(total, read))
    )
    result = Rebuilt(name, old, new, runner.position, done)
    if side_by_side:
        result.row_counts = compare(db, cls, old, new)
    switch(db, name, old, new, runner.position)
    if not side_by_side:
        drop_generation(db, name, old)
        result.dropped_old = True
    return result


def switch(db: Database, name: str, old: int, new: int, position: int) -> None:
    """Point readers and workers at generation `new`, in one transaction."""
    with db.transaction() as tx:
        shards = [
            shard
            for (shard,) in tx.rows(
                "SELECT shard FROM projection_checkpoints WHERE name = ? AND generation = ?",
                (name, old),
            )
        ] or ["0/1"]
        tx.execute(
            "DELETE FROM projection_checkpoints WHERE name = ? AND generation = ?", (name, new)
        )
        for shard in shards:
            tx.execute(
                "INSERT INTO projection_checkpoints (name, generation, shard, position, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                (name, new, shard, position, now_iso()),
            )
        tx.execute("UPDATE projection_generations SET active = ? WHERE name = ?", (new, name))


def compare(db: Database, cls: type[Projection], old: int, new: int) -> dict[str, tuple[int, int]]:
    """Rows per table in the old and the new generation (they differ while workers move on)."""
    counts = {}
    with db.snapshot() as tx:
        existing = set(tx.table_names())
        for short in cls.tables:
            old_table, new_table = cls.table(short, old), cls.table(short, new)
            before = tx.one(f"SELECT COUNT(*) FROM {old_table}") if old_table in existing else None
            after = tx.one(f"SELECT COUNT(*) FROM {new_table}")
            counts[short] = (int(before[0]) if before else 0, int(after[0]) if after else 0)
    return counts


def drop_generation(db: Database, name: str, generation: int) -> None:
    """Drop an old generation's tables and checkpoints. Never the active one."""
    cls = projection_named(name)
    with db.transaction() as tx:
        if generation == active_generation(tx, name):
            raise ValueError(f"generation {generation} of {name} is the one in use")
        cls(generation).drop_tables(tx)
        tx.execute(
            "DELETE FROM projection_checkpoints WHERE name = ? AND generation = ?",
            (name, generation),
        )
