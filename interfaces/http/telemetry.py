"""What each request leaves for whoever runs Farmacy: one log line and the request metrics.

The log line: method, route template, status, duration, request id (the caller's
X-Request-Id cut to 64 characters, or a new one; the answer echoes it) and business ids: those
in the path (fridge_id, order_id, ...) as they are, others a handler adds with `note`. Headers
and bodies are never logged, so neither tokens nor card data can leak.

A write also has a correlation id: the caller's X-Correlation-Id if it is short and plain
(`correlation_id_of`), else the request id; the answer echoes it. Both become the cause of
every event the request records (application/causes.py), so the workers and the process
manager that act on those events log the same ids (`farmacy trace ORDER_ID` shows them).

The metrics keep the names, labels and buckets of Litestar's Prometheus middleware
(`PrometheusConfig(app_name="farmacy", prefix="farmacy", group_path=True)`), which dashboards
use. That middleware and a log middleware of our own each built a `Request`, read the clock
and wrapped `send` for every request, about a tenth of an API process's CPU (py-spy); one
plain ASGI middleware now does both, once.

Like the two before it, it wraps each route (Litestar's app middleware) inside the token
check: a path no route matches, a method it does not allow and a refused token are neither
logged nor counted, so no caller can grow the metrics' label sets.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import structlog
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

from application.causes import caused_by
from domain.causes import Cause

log = structlog.get_logger("farmacy.http")
NOTES = "farmacy_log"
LOGGED_IDS = ("order_id", "fridge_id", "venue_id", "city_id", "meal_id")
REQUEST_ID = b"x-request-id"
CORRELATION_ID = b"x-correlation-id"
PLAIN_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
"""What a caller's correlation id may be: it is stored with every event the request records
and written on log lines, so nothing but a short run of plain characters is kept."""
SERVED_BY = b"x-farmacy-process"
"""Answer header: which API process served (its pid), so a balancer's routing can be seen."""

APP_NAME = "farmacy"
LABELS = ("method", "path", "status_code", "app_name")
IN_PROGRESS = Gauge(
    "farmacy_requests_in_progress",
    "Total requests currently in progress",
    LABELS,
    multiprocess_mode="livesum",
)
REQUESTS = Counter("farmacy_requests_total", "Total requests", LABELS)
DURATION = Histogram("farmacy_request_duration_seconds", "Request duration, in seconds", LABELS)
ERRORS = Counter("farmacy_requests_error_total", "Total errors in requests", LABELS)


def note(request: Request[Any, Any, Any], **ids: str) -> None:
    """Add business ids to this request's log line."""
    scope: dict[str, Any] = request.scope  # type: ignore[assignment]
    scope.setdefault(NOTES, {}).update(ids)


class RouteSeries:
    """The series of one method and route template: looked up by label values once, not
    on every request (`labels()` joins and hashes its values under a lock)."""

    def __init__(self, method: str, route: str) -> None:
        self.method, self.route = method, route
        # Litestar's middleware labelled "in progress" before the answer: always status 200.
        self.in_progress = IN_PROGRESS.labels(method, route, "200", APP_NAME)
        self._by_status: dict[int, tuple[Any, Any, Any]] = {}

    def observe(self, status: int, seconds: float) -> None:
        found = self._by_status.get(status)
        if found is None:
            values = (self.method, self.route, str(status), APP_NAME)
            errors = ERRORS.labels(*values) if status >= 500 else None
            found = (REQUESTS.labels(*values), DURATION.labels(*values), errors)
            self._by_status[status] = found
        requests, duration, errors = found
        if errors is not None:
            errors.inc()
        requests.inc()
        duration.observe(seconds)


SERIES: dict[tuple[str, str], RouteSeries] = {}


def series(method: str, route: str) -> RouteSeries:
    found = SERIES.get((method, route))
    if found is None:
        found = SERIES[method, route] = RouteSeries(method, route)
    return found


PROCESS_PREFIX = os.urandom(8).hex()
"""A new request id is this process's random prefix and the request's number in it: unique
across processes and restarts without a system call per request (`os.urandom` per request
was 7-9 % of a menu read's CPU in issue 18's profile). Forked server processes would share
the prefix, so each takes its own when its app is made (`new_process_prefix`)."""
REQUEST_NUMBERS = itertools.count(1)


def new_process_prefix() -> None:
    global PROCESS_PREFIX, REQUEST_NUMBERS
    PROCESS_PREFIX, REQUEST_NUMBERS = os.urandom(8).hex(), itertools.count(1)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id (the last one sent), cut to 64 characters, or a new one.

    Bytes that are not UTF-8 are replaced, not refused: they made the request a 500."""
    given = b""
    for name, value in headers:
        if name == REQUEST_ID:
            given = value
    if given:
        return given.decode(errors="replace")[:64]
    return f"{PROCESS_PREFIX}{next(REQUEST_NUMBERS):016x}"  # 32 hex digits, as uuid4().hex


def correlation_id_of(headers: list[tuple[bytes, bytes]], request_id: str) -> str:
    """The caller's X-Correlation-Id (the last one sent) if it is plain (`PLAIN_ID`), else the
    request's id: a conversation begins with the request that has no correlation id."""
    given = b""
    for name, value in headers:
        if name == CORRELATION_ID:
            given = value
    if given and PLAIN_ID.fullmatch(given):
        return given.decode()
    return request_id


READS = ("GET", "HEAD")
READ_LOG_PER_SECOND = 100


class ReadLines:
    """How many successful reads get a log line: at most `per_second` a second in this
    process; the reads left out are counted, and the next read's line says how many
    (`unlogged_reads`). A menu read's line cost a tenth of its CPU at 1,400 reads a second,
    where a line per read tells an operator nothing the metrics do not. Errors and writes
    never come here: each always has its line."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.window = float("-inf")
        self.logged = 0
        self.unlogged = 0

    def admit(self, now: float) -> int | None:
        """None: leave this read's line out; else log it, noting this many left out."""
        if now - self.window >= 1.0:
            self.window, self.logged = now, 0
        if self.logged >= self.per_second:
            self.unlogged += 1
            return None
        self.logged += 1
        unlogged, self.unlogged = self.unlogged, 0
        return unlogged


def read_lines_from_env() -> ReadLines:
    text = os.environ.get("FARMACY_READ_LOG_PER_SECOND", "")
    return ReadLines(int(text) if text.isdigit() else READ_LOG_PER_SECOND)


def log_line(
    scope: dict[str, Any],
    method: str,
    route: str,
    status: int,
    seconds: float,
    request_id: str,
    unlogged: int,
    cause: Cause | None = None,
) -> None:
    """The request's one line, with the business ids of its path and its notes."""
    params = scope.get("path_params") or {}
    ids = {k: v for k, v in params.items() if k in LOGGED_IDS}
    ids.update(scope.get(NOTES, {}))
    if cause is not None:
        ids["correlation_id"] = cause.correlation_id
    if unlogged:
        ids["unlogged_reads"] = unlogged
    log.info(
        "request",
        method=method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        request_id=request_id,
        **ids,
    )


def request_telemetry(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: time the request, echo its id, then log it and count it."""
    served_by = (SERVED_BY, str(os.getpid()).encode())  # built in each server process
    new_process_prefix()
    reads = read_lines_from_env()

    async def middleware(asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        if scope["type"] != "http":
            await app(asgi_scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        echoed = [(REQUEST_ID, request_id.encode())]
        method = scope["method"]
        cause = None
        if method not in READS:  # a read records nothing: it needs no cause
            correlation_id = correlation_id_of(scope["headers"], request_id)
            echoed.append((CORRELATION_ID, correlation_id.encode()))
            cause = Cause(request_id, correlation_id, request_id, "api")
        route = scope.get("path_template") or "unmatched"
        counted = series(method, route)
        status = 500  # unless an answer starts: an exception escaped every handler
        counted.in_progress.inc()
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], *echoed, served_by]
            await send(message)

        try:
            if cause is None:  # a read: no context to set, on the hottest path
                await app(asgi_scope, receive, send_wrapper)
            else:
                with caused_by(cause):
                    await app(asgi_scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            counted.in_progress.dec()
            counted.observe(status, seconds)
            unlogged = reads.admit(started) if method in READS and status < 400 else 0
            if unlogged is not None:  # None: a read left out of the log, counted
                log_line(scope, method, route, status, seconds, request_id, unlogged, cause)

    return middleware
