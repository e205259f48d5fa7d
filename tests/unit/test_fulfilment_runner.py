"""The fulfilment process's loop, handed fakes: a follower that replays given events, a
fulfilment that records what it is asked, a fixed clock. No store, no database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from application.errors import TooBusy
from application.follow import Act
from application.fulfilment import Overdue
from application.fulfilment_runner import EXPIRY_TICK_SECONDS, run_fulfilment
from application.payments import PaymentUnavailable

NOW = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)


@dataclass
class Replays:
    """A follower that acts on `events` at positions 1, 2, ... (one batch) then ticks once."""

    events: list[object]
    followed: dict[str, Any] = field(default_factory=dict)

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
        self.followed = {"name": name, "transient": transient, "every": tick and tick[0]}
        act(list(zip(self.events, range(1, len(self.events) + 1), strict=True)))
        if tick is not None:
            tick[1]()


@dataclass
class Records:
    """Stands in for `Fulfilment`: what it was asked to handle and to expire."""

    handled: list[tuple[object, int]] = field(default_factory=list)
    expired: list[Overdue] = field(default_factory=list)
    windows_closed_at: list[datetime] = field(default_factory=list)

    def handle_all(self, batch: Sequence[tuple[object, int]]) -> None:
        self.handled.extend(batch)

    def expire_overdue(self, overdue: Iterable[Overdue]) -> int:
        self.expired.extend(overdue)
        return len(self.expired)

    def close_pickup_windows(self, now: datetime) -> int:
        self.windows_closed_at.append(now)
        return 0


def test_every_event_is_handled_in_order_and_the_tick_expires_what_is_overdue_now() -> None:
    late = Overdue("order-1", "fridge-1", NOW)
    asked_at: list[datetime] = []

    def overdue(now: datetime) -> list[Overdue]:
        asked_at.append(now)
        return [late]

    follower = Replays(["placed", "paid"])
    fulfilment = Records()
    run_fulfilment(fulfilment, follower, overdue, lambda: NOW, threading.Event())  # type: ignore[arg-type]

    assert fulfilment.handled == [("placed", 1), ("paid", 2)]
    assert asked_at == [NOW]
    assert fulfilment.expired == [late]
    assert fulfilment.windows_closed_at == [NOW]
    assert follower.followed == {
        "name": "fulfilment",  # its checkpoint's name, as stores have it
        "transient": (TooBusy, PaymentUnavailable),
        "every": EXPIRY_TICK_SECONDS,
    }
