"""The connection budget: how many PostgreSQL connections each kind of Farmacy process holds.

Every pool is sized from what its process runs, so that a whole stack fits a server's
`max_connections` (PostgreSQL's default is 100, three of them kept for superusers):

- the **event store** pool (eventsourcing's datastore: `POSTGRES_POOL_SIZE` connections kept
  open, up to `POSTGRES_MAX_OVERFLOW` more on demand);
- the **read-model** pool (`psycopg_pool`), one per process, shared by every read model and
  trail the process reads or writes (they live in one schema);
- one connection per **advisory lock** a worker holds to be the active one of its shard.

A pool that cannot hand out a connection within `POOL_TIMEOUT_SECONDS` raises (psycopg_pool's
`PoolTimeout`, which eventsourcing wraps in its `OperationalError`): the API answers 503 with
`Retry-After` at once instead of queueing callers for half a minute, and workers wait it out.

Whole stack = N x api + sum of workers + fulfilment + snapshots (docs/architecture.md has the
table and the arithmetic). Each process also opens one short-lived connection while it starts
(`ops.stores.schema_creation_lock`), closed before it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg_pool
from eventsourcing.persistence import PersistenceError

from application.store import EventStore
from ops.settings import Settings
from projections.database import POOL_TIMEOUT_SECONDS

__all__ = [
    "POOL_TIMEOUT_SECONDS",
    "Budget",
    "NoConnection",
    "answer_promptly",
    "api",
    "stack",
    "worker",
]

API_READ_POOL = 3
"""Read-model connections per API process: menus, stock, orders and readiness share them."""
API_STORE_EXTRA = 2
"""Event-store connections per API process beyond the command lane: reads of the store
outside the lane (an order by id, `/readyz`, metrics) and following it (prices)."""
WORKER_STORE_MAX = 2
"""Event-store connections a worker process shares between its read models: each holds one
only while it reads the next batch of notifications."""
WORKER_READ_MAX = 4
"""Read-model connections a worker process shares between its read models: each holds one
while it applies a batch."""


@dataclass(frozen=True)
class Budget:
    """The most connections one process holds, pool by pool."""

    role: str
    store: int
    """The event store pool's maximum."""
    store_kept: int
    """Of those, how many it keeps open when idle."""
    reads: int
    """The shared read-model pool's maximum."""
    locks: int = 0
    """Connections of their own, each holding a shard's advisory lock."""

    @property
    def total(self) -> int:
        return self.store + self.reads + self.locks

    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing settings that size this process's event store pool."""
        return {
            "POSTGRES_POOL_SIZE": str(self.store_kept),
            "POSTGRES_MAX_OVERFLOW": str(self.store - self.store_kept),
            # eventsourcing hands this to psycopg_pool as its `timeout`: the wait for a
            # pooled connection (not only for a new one), whole seconds.
            "POSTGRES_CONNECT_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
        }


def api(settings: Settings) -> Budget:
    """One API process: the command lane's threads each append through the event store."""
    lane = settings.command_lane_size
    return Budget("api", store=lane + API_STORE_EXTRA, store_kept=lane, reads=API_READ_POOL)


def worker(projections: int, shards: int = 1) -> Budget:
    """One `farmacy worker` process running `projections` read models (each on `shards`
    shards): one thread per projection shard, sharing the store and read-model pools."""
    threads = projections * shards
    return Budget(
        "worker",
        store=min(threads, WORKER_STORE_MAX),
        store_kept=1,
        reads=min(threads, WORKER_READ_MAX),
        locks=threads,
    )


FULFILMENT = Budget("fulfilment", store=2, store_kept=1, reads=2, locks=1)
"""The process manager: one thread follows the store and appends through it; the trail's
checkpoint and the reservations model share the read-model pool (one for the batch, one for
the expiry tick's read)."""

SNAPSHOTS = Budget("snapshots", store=2, store_kept=1, reads=1, locks=1)
"""The snapshot worker: one thread reads notifications, loads a fridge, saves its snapshot."""


EXPIRY = Budget("expiry", store=2, store_kept=1, reads=0)
"""The expiry scheduler (application/expiry.py): one thread follows fridges' installations
and appends each fridge's midnight through the writer. Not counted in `stack` below (issue
20 came after it): a whole stack holds these 2 more."""

POLLER = Budget("poller", store=2, store_kept=1, reads=0)
"""The fridge cloud's poller (application/fridge_cloud.py): one thread follows fridges and
appends their counts and stale marks. Not counted in `stack` either: 2 more."""


def stack(settings: Settings, api_processes: int, projections: int) -> int:
    """Connections of a whole stack at most: `api_processes` API processes, one worker
    process per read model, fulfilment and snapshots."""
    return (
        api_processes * api(settings).total
        + projections * worker(1).total
        + FULFILMENT.total
        + SNAPSHOTS.total
    )


# ---- an API process answers at once when its event store pool is dry -----------------------


class NoConnection(PersistenceError):
    """No connection of the event store's pool came free within the pool's wait."""


class _FinalTimeout(psycopg_pool.ConnectionPool[Any]):
    """A pool whose timeout is final: `NoConnection`, which eventsourcing passes on as is."""

    def getconn(self, timeout: float | None = None) -> Any:
        try:
            return super().getconn(timeout)
        except psycopg_pool.PoolTimeout as error:
            raise NoConnection(str(error)) from error


_FINAL: dict[type, type] = {}


def _final(pool_class: type) -> type:
    if pool_class not in _FINAL:
        _FINAL[pool_class] = type(f"Final{pool_class.__name__}", (_FinalTimeout, pool_class), {})
    return _FINAL[pool_class]


def answer_promptly(store: EventStore) -> None:
    """Make the event store's pool timeout final, for a process that answers callers.

    eventsourcing's PostgreSQL recorder retries every `OperationalError` ten times, 0.2 s
    apart, and it wraps a pool's `PoolTimeout` as one: a caller would wait ten pool waits
    (~22 s) for its 503. Workers keep that patience (a dry pool there is an outage to wait
    out); an API process tells its caller at once. No-op for stores without a psycopg pool.
    """
    pool = getattr(getattr(store.recorder, "datastore", None), "pool", None)
    if isinstance(pool, psycopg_pool.ConnectionPool) and not isinstance(pool, _FinalTimeout):
        pool.__class__ = _final(type(pool))
