"""What a long-running process of the write side is handed to follow the event store.

The fulfilment process manager and the snapshot worker act on every event, at least once,
from a checkpoint of their own. How (the checkpoint's database, the lock that makes one of
them active, batching) is the read side's machinery (projections/trails.py); the
composition root (ops/root.py) hands it to them as a `Follow`, so application/ never imports
it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

Act = Callable[[object, int], None]
"""What a follower does with each event, given its position in the store."""


class Follow(Protocol):
    def __call__(
        self,
        name: str,
        act: Act,
        stop: threading.Event,
        *,
        transient: tuple[type[Exception], ...] = (),
        batch_size: int = 100,
        tick: tuple[float, Callable[[], None]] | None = None,
    ) -> None:
        """Stand by until active, then `act` on every event after the checkpoint called
        `name` until `stop`; `transient` failures of an action or `tick` are tried again."""
