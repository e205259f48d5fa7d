"""Request bodies are decoded strictly, once, before any handler sees them.

Litestar converts a body into the handler's Struct with msgspec's lax rules (`"1"` becomes
`1`), and a body nested a thousand levels deep makes its JSON decoder raise `RecursionError`
(a 500). So every route's `data` is first decoded here with `strict=True` against the type
the handler declares, and every way that can fail becomes one of two errors, which
`errors.py` answers as problem details: `UnreadableBody` (400: not JSON) and `InvalidBody`
(422: JSON, but not the declared shape). A body nested deeper than any request type is JSON
of the wrong shape, so it is a 422 however deep: the typed decoder stops at the first level
that does not fit, and a decoder that runs out of stack says the same.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request


class UnreadableBody(Exception):
    """The body is not JSON this API can read (HTTP 400)."""


class InvalidBody(Exception):
    """The body is JSON but not of the route's request type (HTTP 422)."""


def decode_strictly(body: bytes, shape: Any) -> Any:
    """`body` as `shape`, with no coercion (a string is never taken for a number)."""
    try:
        return msgspec.json.decode(body, type=shape, strict=True)
    except RecursionError:
        raise InvalidBody("the body is nested deeper than any request type") from None
    except msgspec.ValidationError as error:
        raise InvalidBody(str(error)) from None
    except msgspec.DecodeError as error:
        raise UnreadableBody(f"the body is not JSON: {error}") from None


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Litestar's `before_request` hook: refuse a body that is not exactly the route's type.

    Runs after the guards (an unsigned webhook learns nothing about the schema); Litestar then
    converts the same bytes again, which can no longer fail or coerce anything.
    """
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    decode_strictly(await request.body(), data.annotation)
