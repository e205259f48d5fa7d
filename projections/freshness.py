"""Every answer says how fresh it is, and a reader who just wrote can wait for its write.

A query reads the active generation's checkpoint and its data in one snapshot, so the
position it reports is exactly the state it shows. With `min_position`, it polls the
checkpoint (bounded by `timeout`) until the model has reached that position.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from projections.database import Database, Tx
from projections.projection import Projection, active_generation, reflected_position

T = TypeVar("T")
P = TypeVar("P", bound=Projection)

WAIT_TIMEOUT = 2.0
"""How long a query waits, at most, for a `min_position` by default (seconds)."""


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A query's answer and the position (in the event store) it reflects."""

    value: T
    position: int


class ReadModelBehind(Exception):
    """The read model did not reach the wanted position in time (HTTP: 503, retry)."""

    def __init__(self, name: str, position: int, wanted: int) -> None:
        super().__init__(f"{name} is at position {position}, not yet at {wanted}")
        self.name = name
        self.position = position
        self.wanted = wanted


def answer(
    db: Database,
    projection: type[P],
    read: Callable[[Tx, P], T],
    min_position: int | None = None,
    timeout: float = WAIT_TIMEOUT,
) -> Answer[T]:
    """Run `read` on the active generation, once it reflects `min_position` (if given)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        with db.snapshot() as tx:
            position = reflected_position(tx, projection.name)
            if min_position is None or position >= min_position:
                view = projection(active_generation(tx, projection.name))
                return Answer(read(tx, view), position)
        if time.monotonic() >= deadline:
            raise ReadModelBehind(projection.name, position, min_position)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)
