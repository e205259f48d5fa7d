"""The one place errors become answers: RFC 9457 problem details (`application/problem+json`).

Bodies carry the message written for the caller and, where useful, what to do next (what is
still available, when to retry). Never a stack trace, never stored event data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsException
from psycopg_pool import PoolTimeout

from application.errors import (
    NotFound,
    NotYourOrder,
    StoreUnavailable,
    TooBusy,
)
from domain.errors import (
    AlreadyExists,
    DomainError,
    IdempotencyKeyReused,
    InvalidRequest,
    SoldOut,
)
from interfaces.http.bodies import InvalidBody, UnreadableBody
from interfaces.http.commands import CommandQueueFull
from interfaces.http.reading import BadCursor, PositionNotWritten, ReadModelNotBuilt
from ops.connections import NoConnection
from projections.freshness import ReadModelBehind

log = structlog.get_logger(__name__)

STORE_RETRY_AFTER = StoreUnavailable.retry_after_seconds


def problem(status: int, title: str, detail: str, **extra: Any) -> ProblemDetailsException:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return ProblemDetailsException(
        status_code=status,
        title=title,
        detail=detail,
        extra=extra or None,
        headers=headers or None,
    )


def sold_out(error: SoldOut) -> ProblemDetailsException:
    return problem(
        409, "sold out", str(error), fridge_id=error.fridge_id, available=error.available
    )


def not_found(error: NotFound | NotYourOrder) -> ProblemDetailsException:
    # Another customer's order is answered like a missing one: its existence is not disclosed.
    if isinstance(error, NotYourOrder):
        return problem(404, "not found", f"no order {error.order_id}")
    return problem(404, "not found", str(error))


def already_exists(error: AlreadyExists) -> ProblemDetailsException:
    return problem(409, "already exists", str(error))


def invalid(error: InvalidRequest | IdempotencyKeyReused) -> ProblemDetailsException:
    return problem(422, "invalid request", str(error))


def conflict(error: DomainError) -> ProblemDetailsException:
    """Any other broken rule: the request was fine, the state of things refuses it."""
    return problem(409, "conflict", str(error))


def too_busy(error: TooBusy) -> ProblemDetailsException:
    return problem(503, "too busy", str(error), retry_after=TooBusy.retry_after_seconds)


def queue_full(error: CommandQueueFull) -> ProblemDetailsException:
    log.warning("commands_shed", waiting=error.waiting)
    return problem(503, "too busy", str(error), retry_after=CommandQueueFull.retry_after_seconds)


def store_down(error: Exception) -> ProblemDetailsException:
    if isinstance(error.__cause__, PoolTimeout):  # eventsourcing wraps its pool's timeout
        return no_connection(error.__cause__)
    log.error("store_unavailable", error=type(error).__name__, message=str(error)[:200])
    return problem(
        503, "store unavailable", "the event store cannot be reached", retry_after=STORE_RETRY_AFTER
    )


POOL_RETRY_AFTER = 1


def no_connection(error: Exception) -> ProblemDetailsException:
    """Every connection of a pool (event store or read models) stayed busy for the pool's
    whole wait (ops/connections.py): unavailable now, answered at once, likely free soon."""
    log.warning("store_pool_exhausted", message=str(error)[:200])
    return problem(
        503,
        "store unavailable",
        "no database connection was free in time",
        retry_after=POOL_RETRY_AFTER,
    )


READ_RETRY_AFTER = 1


def behind(error: ReadModelBehind) -> ProblemDetailsException:
    """The model did not reach `min_position` in time: the write stands, the read must wait."""
    return problem(
        503,
        "read model behind",
        str(error),
        retry_after=READ_RETRY_AFTER,
        position=error.position,
        wanted=error.wanted,
    )


def not_built(error: ReadModelNotBuilt) -> ProblemDetailsException:
    log.error("read_model_not_built", projection=error.name)
    return problem(503, "read model not built", str(error), retry_after=READ_RETRY_AFTER)


def not_written(error: PositionNotWritten) -> ProblemDetailsException:
    return problem(422, "invalid request", str(error), position=error.head)


def bad_cursor(error: BadCursor) -> ProblemDetailsException:
    return problem(422, "invalid request", f"after: {error}")


def unreadable(error: UnreadableBody) -> ProblemDetailsException:
    return problem(400, "unreadable request", str(error))


def invalid_body(error: InvalidBody) -> ProblemDetailsException:
    return problem(422, "invalid request", str(error))


def http_error(error: HTTPException) -> ProblemDetailsException:
    """Litestar's own errors (validation, auth, unknown route) as problem details."""
    status = 422 if isinstance(error, ValidationException) else error.status_code
    extra = {"errors": error.extra} if isinstance(error.extra, list) and error.extra else {}
    if isinstance(error.extra, dict):
        extra = dict(error.extra)
    title = {401: "unauthorised", 403: "forbidden", 404: "not found", 422: "invalid request"}
    return ProblemDetailsException(
        status_code=status,
        title=title.get(status, "error"),
        detail=error.detail,
        extra=extra or None,
        headers=error.headers,
    )


UNUSABLE_FILE = ("disk is full", "readonly", "locked", "unable to open", "disk i/o error")
"""What SQLite says when its file, not the query, is the trouble: the data directory is full,
read-only, busy or gone. Anything else it says (a missing column, a syntax error) is a bug."""


def file_unusable(error: sqlite3.OperationalError) -> ProblemDetailsException:
    """A read model's SQLite file cannot be used right now: 503 with the reason, never a 500;
    it answers again once the operator has made room or made the directory writable."""
    reason = str(error)
    if not any(words in reason.lower() for words in UNUSABLE_FILE):
        return unexpected(error)
    log.error("read_model_file_unusable", message=reason[:200])
    return problem(
        503,
        "store unavailable",
        f"a read model's file cannot be used: {reason}",
        retry_after=STORE_RETRY_AFTER,
    )


def unexpected(error: Exception) -> ProblemDetailsException:
    log.exception("unexpected_error", error=type(error).__name__)
    return problem(500, "internal error", "something went wrong on our side")


PROBLEMS: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    ProblemDetailsException: lambda error: error,
    SoldOut: sold_out,
    NotFound: not_found,
    NotYourOrder: not_found,
    AlreadyExists: already_exists,
    InvalidRequest: invalid,
    IdempotencyKeyReused: invalid,
    DomainError: conflict,
    TooBusy: too_busy,
    CommandQueueFull: queue_full,
    ReadModelBehind: behind,
    ReadModelNotBuilt: not_built,
    BadCursor: bad_cursor,
    PositionNotWritten: not_written,
    UnreadableBody: unreadable,
    InvalidBody: invalid_body,
    StoreUnavailable: store_down,
    PoolTimeout: no_connection,  # a read model's pool
    NoConnection: no_connection,  # the event store's pool (ops/connections.py)
    psycopg.OperationalError: store_down,  # a read model's database
    sqlite3.OperationalError: file_unusable,  # a read model's file
    OperationalError: store_down,
    InterfaceError: store_down,
    HTTPException: http_error,
    Exception: unexpected,
}


def to_problem(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    """Map `error` by the nearest class in PROBLEMS (the handler Litestar calls for all)."""
    for cls in type(error).__mro__:
        convert = PROBLEMS.get(cls)
        if convert is not None:
            return convert(error).to_response(request)
    return unexpected(error).to_response(request)  # pragma: no cover - Exception is in PROBLEMS
