"""The fridge vendor's HTTP API, as the poller reads it (application/fridge_cloud.py).

One documented JSON format (docs/architecture.md, "The fridge cloud"):

    GET {base}/v1/fridges/{fridge_id}/counts?since={ISO 8601}&limit={n}
    200 {"reports": [{"report_id": "r-1", "taken_at": "2026-12-06T06:00:00Z",
                      "counts": {"lentil-dal": 4}}]}

Reports may come in any order and repeat; the poller sorts and skips what it has. An answer
holding `limit` reports may have more: the next page is asked `since` the newest of them.

httpx with timeouts on every phase; a transport error, a timeout, a 5xx or a 429 is tried
again with jittered exponential backoff (tenacity), a bounded number of times; a 4xx or a
body not of the format is not (asking again would get the same). Requests are paced to a
rate limit shared by every fridge the poller asks about.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import httpx
import msgspec
from msgspec import Meta, Struct
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from application.fridge_cloud import VendorReport, VendorUnavailable
from domain.values import MOST_UNITS

PAGE = 100
MOST_PAGES = 20
TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=5.0, pool=2.0)
Id = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class _Report(Struct, forbid_unknown_fields=False):
    report_id: Id
    taken_at: Annotated[datetime, Meta(tz=True)]
    counts: Annotated[dict[Id, Annotated[int, Meta(ge=0, le=MOST_UNITS)]], Meta(max_length=500)]


class _Answer(Struct, forbid_unknown_fields=False):
    reports: Annotated[list[_Report], Meta(max_length=1000)]


class _Retry(Exception):
    """An answer worth asking again for: the vendor is busy or failing for now."""


class Pace:
    """At most `rate` requests a second, whoever asks: each waits for the next free slot."""

    def __init__(self, rate: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)


class VendorCounts:
    """`CountSource` over the vendor's API."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float = 5.0,
        attempts: int = 3,
        timeout: httpx.Timeout = TIMEOUT,
        backoff_cap: float = 2.0,
    ) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=timeout)
        self.pace = Pace(rate)
        self.attempts = attempts
        self.backoff_cap = backoff_cap

    def close(self) -> None:
        self.client.close()

    def reports(self, fridge_id: str, since: datetime | None) -> list[VendorReport]:
        found: list[VendorReport] = []
        for _ in range(MOST_PAGES):
            page = self._page(fridge_id, since)
            found += page
            if len(page) < PAGE:
                break
            since = max(r.taken_at for r in page)
        return found

    def _page(self, fridge_id: str, since: datetime | None) -> list[VendorReport]:
        params = {"limit": str(PAGE)}
        if since is not None:
            params["since"] = since.isoformat()
        retrying = Retrying(
            retry=retry_if_exception_type((_Retry, httpx.TransportError)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=0.1, max=self.backoff_cap),
            reraise=True,
        )
        try:
            answer = retrying(self._get, f"/v1/fridges/{fridge_id}/counts", params)
        except (_Retry, httpx.TransportError) as error:
            raise VendorUnavailable(f"{type(error).__name__}: {error}") from None
        if answer.status_code != 200:
            raise VendorUnavailable(f"the vendor answered {answer.status_code}")
        try:
            decoded = msgspec.json.decode(answer.content, type=_Answer, strict=True)
        except msgspec.DecodeError as error:
            raise VendorUnavailable(f"an answer not of the documented format: {error}") from None
        return [VendorReport(r.report_id, r.taken_at, r.counts) for r in decoded.reports]

    def _get(self, path: str, params: dict[str, str]) -> httpx.Response:
        self.pace.wait()
        answer = self.client.get(path, params=params)
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _Retry(f"the vendor answered {answer.status_code}")
        return answer
