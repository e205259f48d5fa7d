"""What a long-running process of the write side is handed to follow the event store.

The fulfilment process manager and the snapshot worker act on every event, at least once,
from a checkpoint of their own, a batch at a time: a follower may do a batch's work side by
side (fulfilment asks the payment processor about a batch's orders at once), as long as it
is all done when `act` returns, for the checkpoint moves past the batch then. How (the
checkpoint's database, the lock that makes one of them active, batching) is the read side's
machinery (projections/trails.py); the composition root (ops/root.py) hands it to them as
a `Follow`, so application/ never imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

Seen = tuple[object, int]
"""An event and its position in the store."""

Act = Callable[[Sequence[Seen]], None]
"""What a follower does with a batch of events, in the store's order."""


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
        """Stand by until active, then `act` on every batch of events after the checkpoint
        called `name` until `stop`; `transient` failures of an action or `tick` are tried
        again. A batch that fails otherwise is acted on again one event at a time."""
