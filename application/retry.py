"""Retrying optimistic-concurrency conflicts: reload, decide again, back off with full jitter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from eventsourcing.persistence import IntegrityError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from application.errors import TooBusy

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Full jitter: each wait is uniform in [0, min(cap, base * 2**attempt)].

    The bound is a time budget as well as a count: under heavy cross-process contention on
    one stream, a fixed small count gives up on callers that would have succeeded a few
    milliseconds later, while the budget keeps an unlucky caller's wait well inside a request.
    """

    attempts: int = 60
    budget_seconds: float = 3.0
    base_seconds: float = 0.001
    cap_seconds: float = 0.05

    def retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(IntegrityError),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.budget_seconds),
            wait=wait_random_exponential(multiplier=self.base_seconds, max=self.cap_seconds),
            reraise=True,
        )


def on_conflict_retry(what: str, attempt: Callable[[], T], backoff: Backoff | None = None) -> T:
    """Run `attempt` (which must load afresh, decide and append) until no conflict.

    After a failed save the aggregate has lost its pending events, so each attempt reloads.
    """
    policy = backoff or Backoff()
    try:
        for trial in policy.retrying():
            with trial:
                if trial.retry_state.attempt_number > 1:
                    log.debug(
                        "conflict_retried", what=what, attempt=trial.retry_state.attempt_number
                    )
                return attempt()
    except IntegrityError:
        log.warning("conflicts_exhausted", what=what, budget_seconds=policy.budget_seconds)
        raise TooBusy(what, policy.budget_seconds) from None
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
