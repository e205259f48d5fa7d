"""The OpenAPI document tells the truth: every status a route answers, errors as problem
details, the headers that come with them, and who may call each route.

Litestar documents each route's success and what a handler declares in `responses=`
(`answers(...)` below: statuses particular to the route, such as 409). What every route of a
kind answers is derived here from the route itself, in one place, when the document is
first served: 401 and 403 where a guard checks a role (and the roles, as the operation's
security), 400 and 422 where there is a body, 422 where there are parameters, 404 where a
path names something, 503 with `Retry-After` wherever a store is behind the answer. Litestar
would otherwise describe a validation failure as `application/json` `{status_code, detail,
extra}`, which no route of this API ever answers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.routes import HTTPRoute
from msgspec import Struct

PROBLEM_JSON = "application/problem+json"
BEARER = "BearerToken"
SIGNATURE = "PaymentSignature"


class Problem(Struct, kw_only=True):
    """RFC 9457 problem details: what every error of this API answers, with a reason."""

    status: int
    title: str
    detail: str
    retry_after: int | None = None  # also the Retry-After header (seconds)
    fridge_id: str | None = None  # sold out: the fridge
    available: dict[str, int] | None = None  # sold out: units per meal still available
    position: int | None = None  # the position a read model (or the store) is at
    wanted: int | None = None  # the min_position asked for
    reasons: list[str] | None = None  # not ready: why
    errors: list[dict[str, Any]] | None = None  # invalid: which fields, and why


WHY = {
    400: "the body is not JSON",
    401: "no valid bearer token (or, for the webhook, no valid signature)",
    403: "the token's role may not do this (a fridge: only its own fridge)",
    404: "nothing with this id (another customer's order included)",
    409: "the state of things refuses it (sold out, created before with other content, ...)",
    422: "the request is not of the documented shape or breaks a rule "
    "(a string for a number, out of bounds, nested deeper than the documented shape, "
    "min_position never written, ...)",
    503: "the store, a read model or the command lane cannot answer now; retry after "
    "`Retry-After` seconds",
}


def problem_spec(status: int, why: str | None = None) -> ResponseSpec:
    return ResponseSpec(
        Problem, description=why or WHY[status], media_type=PROBLEM_JSON, generate_examples=False
    )


def answers(*statuses: int) -> dict[int, ResponseSpec]:
    """A handler's `responses=`: the problem statuses particular to it, e.g. `answers(409)`;
    join others with `|` (`answers(409) | repeat(...)`)."""
    return {status: problem_spec(status) for status in statuses}


LOCATION = "location"
"""A handler's `opt` key: the path template where what its 201 creates can be read."""


def creates(where: str) -> dict[str, str]:
    """A handler's `opt=`: its 201 says in `Location` where the new thing is read, `where`
    filled with the created id (`/orders/{id}`), and the document says so."""
    return {LOCATION: where}


def located(where: str, created_id: str) -> dict[str, str]:
    """The headers of a 201 that created `created_id`, read at `where`."""
    return {"Location": where.format(id=created_id)}


def repeat(body: type[Struct], what: str) -> dict[int, ResponseSpec]:
    """The 200 of a create that repeats one already done with the same content."""
    return {200: ResponseSpec(body, description=what, generate_examples=False)}


# ---- derived from the routes, once, when the document is first served -------------------


def amend(document: dict[str, Any], request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Add to Litestar's document what every route of a kind answers (idempotent)."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if "Problem" not in schemas:  # no handler declared one yet
        _, found = msgspec.json.schema_components(
            [Problem], ref_template="#/components/schemas/{name}"
        )
        schemas.update(found)
    components.setdefault("securitySchemes", {})[SIGNATURE] = {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "Standard Webhooks: with webhook-id and webhook-timestamp, v1 HMAC-SHA256 "
        "keyed with FARMACY_PAYMENT_WEBHOOK_SECRET",
    }
    for route in request.app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = document["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    _amend_operation(operation, handler.resolve_guards(), route.path_format)
                    _amend_created(operation, handler.opt.get(LOCATION))
    return document


def _amend_created(operation: dict[str, Any], where: str | None) -> None:
    """Litestar describes every 201 as "Document created, URL follows"; say what is true."""
    created = operation.get("responses", {}).get("201")
    if created is None:
        return
    if where is None:
        created["description"] = "recorded (nothing of its own to read it back at)"
        return
    created["description"] = f"created; `Location` says where to read it ({where})"
    created["headers"] = {
        "Location": {
            "description": f"where the new resource is read: {where}",
            "required": True,
            "schema": {"type": "string"},
        }
    }


def _amend_operation(operation: dict[str, Any], guards: Any, path: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    roles = sorted({str(role) for guard in guards for role in getattr(guard, "roles", ())})
    signed = any(getattr(guard, "signature", False) for guard in guards)
    parameters = operation.get("parameters") or []
    statuses = set()
    if roles or signed:
        statuses.add(401)
    if roles:
        statuses.add(403)
    if "requestBody" in operation:
        statuses |= {400, 422}
    else:
        responses.pop("400", None)  # Litestar's guess: parameters that fail are 422 here
    if parameters:
        statuses.add(422)
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses.add(404)
    if path != "/healthz":
        statuses.add(503)
    for status in statuses:
        current = responses.get(str(status), {})
        if PROBLEM_JSON not in current.get("content", {}):
            responses[str(status)] = _problem_response(WHY[status])
    if "503" in responses:
        responses["503"]["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    if roles:
        # OpenAPI 3.1: for schemes other than OAuth2, the list names the roles required
        operation["security"] = [{BEARER: roles}]
    elif signed:
        operation["security"] = [{SIGNATURE: []}]
    else:
        operation["security"] = []


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


class AmendedJson(JsonRenderPlugin):
    """`/schema/openapi.json`, amended (the interactive page reads this one)."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, amend(openapi_schema, request))


class AmendedYaml(YamlRenderPlugin):
    """`/schema/openapi.yaml`, amended."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, amend(openapi_schema, request))
