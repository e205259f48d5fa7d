"""One structured log line per request: route, status, duration, request id, business ids.

Ids in the path (fridge_id, order_id, ...) are logged as they are; a handler adds others with
`note`. Headers and bodies are never logged, so neither tokens nor card data can leak.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("farmacy.http")
NOTES = "farmacy_log"
LOGGED_IDS = ("order_id", "fridge_id", "venue_id", "city_id", "meal_id")


def note(request: Request[Any, Any, Any], **ids: str) -> None:
    """Add business ids to this request's log line."""
    scope: dict[str, Any] = request.scope  # type: ignore[assignment]
    scope.setdefault(NOTES, {}).update(ids)


def request_log(app: ASGIApp) -> ASGIApp:
    async def middleware(asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = asgi_scope  # type: ignore[assignment]
        if scope["type"] != "http":
            await app(asgi_scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode()[:64] or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await app(asgi_scope, receive, send_wrapper)
        finally:
            params = scope.get("path_params") or {}
            ids = {k: v for k, v in params.items() if k in LOGGED_IDS}
            ids.update(scope.get(NOTES, {}))
            log.info(
                "request",
                method=scope["method"],
                route=scope.get("path_template") or "unmatched",
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=request_id,
                **ids,
            )

    return middleware
