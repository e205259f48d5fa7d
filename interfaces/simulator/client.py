"""The API as the simulator calls it: httpx, one shared connection pool, every request timed
and counted under its kind; a 503 is retried after its Retry-After, as a phone would.

At most `connections` requests are handed to httpx at once; the rest wait their turn here.
httpcore's pool looks over every connection for every request queued inside it on each
change (profiled: with 256 sessions on 32 connections, three quarters of the simulator's
CPU went there), so a queue in the pool costs quadratic time and the client, not the API,
becomes the limit. A request is timed from when it is handed to httpx: the API's time and the
network's, not the simulator's own queue."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from interfaces.simulator.figures import BUSY, Figures

Tokens = Callable[[str, str], str]
"""(role, subject) -> a bearer token the API accepts."""

FULFILMENT_POSITION = re.compile(rb"^farmacy_fulfilment_position ([0-9.e+]+)$", re.MULTILINE)
BUSY_RETRIES = 4
LONGEST_WAIT = 1.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default) if isinstance(self.body, dict) else default


class Api:
    def __init__(self, base_url: str, tokens: Tokens, figures: Figures, connections: int) -> None:
        self.tokens = tokens
        self.figures = figures
        self._tokens: dict[tuple[str, str], str] = {}
        self._turns = asyncio.Semaphore(connections)
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(30.0, connect=10.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def close(self) -> None:
        await self.http.aclose()

    def token(self, role: str, subject: str) -> str:
        key = (role, subject)
        if key not in self._tokens:
            self._tokens[key] = self.tokens(role, subject)
        return self._tokens[key]

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        role: str,
        subject: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request as `role`/`subject`, timed under `kind`; a 503 waits its Retry-After
        (at most a second) and goes again, a bounded number of times."""
        sent = {"Authorization": f"Bearer {self.token(role, subject)}", **(headers or {})}
        for attempt in range(BUSY_RETRIES + 1):
            async with self._turns:
                start = time.perf_counter()
                try:
                    answer = await self.http.request(
                        method, path, json=body, params=params, headers=sent
                    )
                except httpx.HTTPError as error:
                    self.figures.record(kind, type(error).__name__, time.perf_counter() - start)
                    return Answer(0, {"detail": str(error)})
                elapsed = time.perf_counter() - start
            decoded = decode(answer)
            self.figures.record(kind, answer.status_code, elapsed, decoded)
            if answer.status_code != BUSY or attempt == BUSY_RETRIES:
                result = Answer(answer.status_code, decoded)
                if result.ok and isinstance(result.get("position"), int):
                    self.figures.saw_position(result.get("position"))
                return result
            wait = float(answer.headers.get("Retry-After", "0.2") or 0.2)
            await asyncio.sleep(min(wait, LONGEST_WAIT))
        raise AssertionError("unreachable")  # pragma: no cover

    async def head(self) -> int | None:
        """The newest position the store has written (GET /readyz)."""
        try:
            answer = await self.http.get("/readyz")
            position = answer.json().get("position")
        except (httpx.HTTPError, ValueError):
            return None
        return position if isinstance(position, int) else None

    async def fulfilment_position(self) -> int | None:
        """The position the fulfilment process has acted up to (GET /metrics), or None where
        the API shows none (no fulfilment checkpoint yet, or no answer)."""
        try:
            answer = await self.http.get("/metrics")
        except httpx.HTTPError:
            return None
        found = FULFILMENT_POSITION.search(answer.content) if answer.status_code == 200 else None
        return int(float(found.group(1))) if found else None


def decode(answer: httpx.Response) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        return answer.text
