"""Successful reads are logged at most N a second per process; the rest are counted on the
next line; errors and writes always have their line (interfaces/http/telemetry.py)."""

from __future__ import annotations

from typing import Any

import anyio
from structlog.testing import capture_logs

from interfaces.http.telemetry import ReadLines, request_telemetry


def test_reads_past_the_budget_are_counted_on_the_next_line() -> None:
    lines = ReadLines(per_second=2)
    assert [lines.admit(10.0), lines.admit(10.1), lines.admit(10.2), lines.admit(10.9)] == [
        0,
        0,
        None,
        None,
    ]
    assert lines.admit(11.0) == 2  # a new second: logged, saying two were left out
    assert lines.admit(11.1) == 0


def requests(calls: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The `request` lines one middleware writes for these (method, status) calls."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        status = scope["answer"]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    middleware = request_telemetry(inner)

    async def run() -> None:
        for method, status in calls:
            scope = {"type": "http", "method": method, "path": "/x", "headers": []}
            await middleware({**scope, "answer": status}, None, send)  # type: ignore[arg-type]

    with capture_logs() as lines:
        anyio.run(run)
    return [line for line in lines if line["event"] == "request"]


def test_errors_and_writes_are_always_logged(monkeypatch: Any) -> None:
    monkeypatch.setenv("FARMACY_READ_LOG_PER_SECOND", "1")
    calls = [("GET", 200)] * 3 + [("GET", 404), ("GET", 503), ("POST", 201), ("DELETE", 200)]
    logged = [(line["method"], line["status"]) for line in requests(calls)]
    assert logged == [("GET", 200), ("GET", 404), ("GET", 503), ("POST", 201), ("DELETE", 200)]
