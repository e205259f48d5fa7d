"""Guards run on the route's own handler: no copy of it per guard and request (issue 18
part 5), and a guard that refuses still refuses."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import TestClient

from interfaces.http.auth import guard_in_place


def test_a_guard_is_handed_the_routes_own_handler_and_can_still_refuse() -> None:
    handed: list[BaseRouteHandler] = []

    async def remember(_: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        handed.append(handler)

    async def refuse(_: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
        raise PermissionDeniedException("not you")

    @get("/open", guards=[remember])
    async def open_route() -> str:
        return "yes"

    @get("/closed", guards=[remember, refuse])
    async def closed_route() -> str:
        return "no"

    app = guard_in_place(Litestar([open_route, closed_route]))
    with TestClient(app) as client:
        assert client.get("/open").text == "yes"
        assert client.get("/closed").status_code == 403
        assert client.get("/open").text == "yes"

    served = {route.path: route.route_handlers[0] for route in app.routes}  # type: ignore[union-attr]
    assert [id(h) for h in handed] == [
        id(served["/open"]),
        id(served["/closed"]),
        id(served["/open"]),
    ]
