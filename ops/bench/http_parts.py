"""The HTTP path's parts, one at a time, in this process (issue 18 part 5): how long each
takes per request, so a change to one is measured before and after on the same machine.

- request id:      `request_id_of` for a request that brings none;
- token, known:    the JWT middleware's check of a token it has already passed;
- telemetry, read: the request middleware around an app that answers 200 to a GET at once
                   (time, id, metrics, the log line, to /dev/null);
- telemetry, write: the same for a POST (never sampled);
- lane hand-off:   `CommandLane.run` of a command that does nothing (event loop -> a lane
                   thread -> back).

    .venv/bin/python -m ops.bench.http_parts [--rounds 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from interfaces.http.auth import Role, issue_token, jwt_auth
from interfaces.http.commands import CommandLane
from interfaces.http.telemetry import request_id_of, request_telemetry
from ops.logging import configure_logging

SECRET = "bench-secret-long-enough-for-hs256-signatures"


def per_call_us(rounds: int, call: Any) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - started) / rounds * 1e6


async def per_await_us(rounds: int, call: Any) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        await call()
    return (time.perf_counter() - started) / rounds * 1e6


async def telemetry_us(rounds: int, method: str) -> float:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped: Any = request_telemetry(app)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "method": method,
            "path": "/venues/v/menu",
            "path_template": "/venues/{venue_id}/menu",
            "path_params": {"venue_id": "v"},
            "headers": [(b"host", b"bench")],
        }

    return await per_await_us(rounds, lambda: wrapped(scope(), receive, send))


async def token_us(rounds: int) -> float:
    from litestar.testing import RequestFactory

    token = issue_token(SECRET, Role.CUSTOMER, "ana")
    middleware_class: Any = jwt_auth(SECRET).authentication_middleware_class
    middleware = middleware_class(
        algorithm="HS256",
        app=None,
        auth_header="Authorization",
        exclude=None,
        exclude_http_methods=None,
        exclude_opt_key="public",
        retrieve_user_handler=jwt_auth(SECRET).retrieve_user_handler,
        scopes=None,
        token_secret=SECRET,
    )
    connection = RequestFactory().get("/", headers={"Authorization": f"Bearer {token}"})
    await middleware.authenticate_request(connection)  # the first check: remembered
    return await per_await_us(rounds, lambda: middleware.authenticate_request(connection))


async def lane_us(rounds: int) -> float:
    lane = CommandLane(4, 256)
    try:
        await lane.run(lambda: None)
        return await per_await_us(rounds, lambda: lane.run(lambda: None))
    finally:
        lane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    rounds = parser.parse_args().rounds
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the log lines go nowhere
    configure_logging("INFO", "json")
    print(f"request id       {per_call_us(rounds, lambda: request_id_of([])):7.2f} us")
    print(f"token, known     {asyncio.run(token_us(rounds)):7.2f} us")
    print(f"telemetry, read  {asyncio.run(telemetry_us(rounds, 'GET')):7.2f} us")
    print(f"telemetry, write {asyncio.run(telemetry_us(rounds, 'POST')):7.2f} us")
    print(f"lane hand-off    {asyncio.run(lane_us(rounds // 4)):7.2f} us")


if __name__ == "__main__":
    main()
