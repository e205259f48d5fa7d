"""Where every projection shard stands: position, lag (events and seconds), state, last error.

Lag in events is `head - position`. On SQLite and PostgreSQL notification ids are dense, so
that is the number of events still to apply; on KurrentDB they are commit positions with gaps,
so it is a distance in the log, not a count. Lag in seconds is the age of the oldest event the
shard has not applied yet (0 when it is caught up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from projections.database import Database
from projections.projection import active_generation, create_bookkeeping
from projections.source import EventSource

STALE_AFTER = timedelta(seconds=5)
"""A worker whose heartbeat is older than this is taken for gone."""


@dataclass(frozen=True)
class ShardStatus:
    projection: str
    shard: str
    generation: int
    position: int
    lag_events: int
    lag_seconds: float
    state: str  # running, standby, stopped, failed
    standbys: int
    error: str | None


def shard_statuses(store: EventSource, db: Database, name: str) -> list[ShardStatus]:
    """The status of every shard of projection `name` (its active generation)."""
    head = store.recorder.max_notification_id() or 0
    now = datetime.now(UTC)
    with db.transaction() as tx:
        create_bookkeeping(tx)
    with db.snapshot() as tx:
        generation = active_generation(tx, name)
        checkpoints = tx.rows(
            "SELECT shard, position, error FROM projection_checkpoints WHERE name = ? "
            "AND generation = ? ORDER BY shard",
            (name, generation),
        )
        workers = tx.rows(
            "SELECT shard, role, seen_at FROM projection_workers WHERE name = ?", (name,)
        )
    live: dict[str, list[str]] = {}
    for shard, role, seen_at in workers:
        if role == "failed" or now - datetime.fromisoformat(seen_at) < STALE_AFTER:
            live.setdefault(shard, []).append(role)
    statuses = []
    for shard, position, error in checkpoints or [("0/1", 0, None)]:
        roles = live.get(shard, [])
        if "running" in roles:
            state = "running"
        elif error or "failed" in roles:
            state = "failed"
        elif "standby" in roles:
            state = "standby"
        else:
            state = "stopped"
        statuses.append(
            ShardStatus(
                projection=name,
                shard=shard,
                generation=generation,
                position=int(position),
                lag_events=max(0, head - int(position)),
                lag_seconds=_lag_seconds(store, int(position), now),
                state=state,
                standbys=roles.count("standby"),
                error=error,
            )
        )
    return statuses


def _lag_seconds(store: EventSource, position: int, now: datetime) -> float:
    following = store.recorder.select_notifications(
        start=position or None, limit=1, inclusive_of_start=False
    )
    if not following:
        return 0.0
    happened: datetime = getattr(store.mapper.to_domain_event(following[0]), "timestamp", now)
    return max(0.0, (now - happened).total_seconds())
