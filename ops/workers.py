"""The read-model worker process: opens what its workers need and runs them.

A worker per projection runs as a thread of one process (`farmacy worker`); the threads share
one event store and one read-model pool, sized for how many they are (ops/connections.py),
and each holds its shard's lock on a connection of its own. The workers themselves
(projections/worker.py) are handed what they read and write.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from application.store import EventStore
from ops import connections
from ops.bootstrap import open_event_store
from ops.read_models import open_databases
from ops.settings import Settings
from projections.models import close_databases
from projections.projection import Shard
from projections.worker import Worker

log = logging.getLogger("farmacy.projections")


def run_workers(
    settings: Settings,
    names: list[str],
    shard: Shard,
    stop: threading.Event,
    *,
    store: EventStore | None = None,
    **options: Any,
) -> list[str]:
    """Run a worker per projection (threads of this process) until `stop`; their errors.
    The threads share `store` (or one opened here) and one read-model pool."""
    budget = connections.worker(len(names))
    try:
        shared = store or open_event_store(settings, budget.event_store_env())
    except Exception as error:  # StoreUnavailable: its message names the setting to fix
        return [str(error)]
    dbs = open_databases(settings, names, pool_size=budget.reads)
    errors: list[str] = []

    def work(name: str) -> None:
        try:
            Worker(name, shard, stop, store=shared, db=dbs[name], **options).run()
        except Exception as error:
            errors.append(str(error))
            log.error("%s shard %s stopped: %s", name, shard, error)

    threads = [threading.Thread(target=work, args=(name,), name=name) for name in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        close_databases(dbs)
        if store is None:
            shared.close()
    return errors
