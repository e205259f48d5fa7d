"""Who may call what: bearer JWTs signed with FARMACY_SECRET, a role claim, guards per route.

The token's subject is the customer id (role customer) or the fridge id (role fridge). A
missing or bad token is 401; a valid token with the wrong role (or another fridge's id) is 403.

A client sends the same token with every request, and checking it (base64, JSON, HMAC, claims)
cost a menu request about a fifth of its CPU, so a token that passed is remembered by its
exact text and the secret it was checked with (`VerifiedTokens`, bounded) until it expires.
Nothing else about a token can change: its signature and claims are in its text.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from enum import StrEnum
from types import MethodType
from typing import Any

from cachetools import LRUCache
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.routes import HTTPRoute
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token
from litestar.types import Guard
from msgspec import Struct


class Role(StrEnum):
    CUSTOMER = "customer"
    KITCHEN = "kitchen"
    FRIDGE = "fridge"
    OPERATOR = "operator"
    PAYMENT = "payment"
    SUBSYSTEM = "subsystem"  # another part of the business reading the feed (docs/feed.md)


class Caller(Struct, frozen=True):
    """The authenticated caller: `connection.user` on every protected route."""

    role: Role
    subject: str


PUBLIC = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema"]


async def retrieve_caller(token: Token, _: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    """Async although it waits for nothing: Litestar runs a sync one in a worker thread."""
    role = str(token.extras.get("role"))
    if role not in set(Role):
        return None  # a token we signed but without a known role is no credential: 401
    return Caller(Role(role), token.sub)


class VerifiedTokens:
    """Tokens that passed every check, by (secret, token text), until they expire: at most
    `size` of them, the least recently used forgotten first (cachetools' LRUCache; its
    time-aware TLRUCache cost a known token twice as much, and each entry's expiry is
    checked on the way out anyway)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._passed: LRUCache[tuple[str, str], tuple[float, AuthenticationResult]] = LRUCache(
            maxsize=size
        )
        self._lock = threading.Lock()  # an app's middleware may be entered from threads

    def __len__(self) -> int:
        return len(self._passed)

    def get(self, secret: str, encoded: str, now: float) -> AuthenticationResult | None:
        with self._lock:
            found = self._passed.get((secret, encoded))
            if found is None:
                return None
            expires, result = found
            if now >= expires:  # as PyJWT: expired once `exp` is not in the future
                self._passed.pop((secret, encoded), None)
                return None
            return result

    def put(self, secret: str, encoded: str, result: AuthenticationResult) -> None:
        token: Token = result.auth
        with self._lock:
            self._passed[secret, encoded] = (token.exp.timestamp(), result)


VERIFIED = VerifiedTokens()


class RememberingJWTMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT check, skipped for a token it already passed (see `VerifiedTokens`).

    Only `Authorization: Bearer <token>` carries a token: Litestar takes whatever follows the
    first space, so `Basic <token>` or `Token <token>` passed for a bearer token.
    """

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get(self.auth_header)
        if not header:
            raise NotAuthorizedException("a bearer token is needed: Authorization: Bearer <token>")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "bearer" or not encoded.strip():  # schemes are case-insensitive
            # never echo what was sent: without a scheme, the "scheme" is the credential
            raise NotAuthorizedException("only the Bearer scheme is accepted: Bearer <token>")
        return await self.authenticate_token(encoded.strip(), connection)

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        found = VERIFIED.get(self.token_secret, encoded_token, time.time())
        if found is not None:
            return found
        result = await super().authenticate_token(encoded_token, connection)
        VERIFIED.put(self.token_secret, encoded_token, result)
        return result


def jwt_auth(secret: str) -> JWTAuth[Caller, Token]:
    return JWTAuth[Caller, Token](
        token_secret=secret,
        retrieve_user_handler=retrieve_caller,
        exclude=PUBLIC,
        exclude_opt_key="public",
        description="Bearer JWT signed with FARMACY_SECRET; `farmacy token ROLE` prints one.",
        authentication_middleware_class=RememberingJWTMiddleware,
    )


def issue_token(
    secret: str, role: Role, subject: str, lifetime: timedelta = timedelta(days=1)
) -> str:
    """A bearer token for `role`, acting as `subject` (the customer or fridge id)."""
    return jwt_auth(secret).create_token(
        identifier=subject, token_expiration=lifetime, token_extras={"role": str(role)}
    )


def allow(*roles: Role) -> Guard:
    """Only these roles; on a route about one fridge, a fridge only for the one its token names.

    The guard is async although it waits for nothing: Litestar runs a sync guard in a worker
    thread, which cost every guarded request a thread hop.
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        caller = connection.scope.get("user")
        if not isinstance(caller, Caller):  # e.g. OPTIONS, which JWTAuth lets through
            raise NotAuthorizedException("a bearer token is needed")
        if caller.role not in roles:
            raise PermissionDeniedException(f"the {caller.role} role may not do this")
        fridge_id = connection.path_params.get("fridge_id")
        if caller.role is Role.FRIDGE and fridge_id is not None and fridge_id != caller.subject:
            raise PermissionDeniedException(f"this token speaks for fridge {caller.subject} only")

    guard.roles = roles  # type: ignore[attr-defined]  # the OpenAPI document's security
    return guard


async def _authorize_in_place(
    handler: BaseRouteHandler, connection: ASGIConnection[Any, Any, Any, Any]
) -> None:
    """Litestar's `authorize_connection` without its `copy(handler)` per guard: our guards
    never look at the handler, let alone change it."""
    for guard in handler.resolve_guards():
        await guard(connection, handler)  # type: ignore[misc]  # made async by resolve_guards


def guard_in_place(app: Litestar) -> Litestar:
    """Every route of `app` runs its guards on its own handler.

    Litestar's `BaseRouteHandler.authorize_connection` hands each guard a shallow copy of the
    route handler, on every request (in case a guard changes it): a guarded order spent
    about 6 % of its API process's samples in `copy` (docs/benchmarks.md, issue 18 part 5).
    Litestar has no setting for it, so each of the app's handlers gets this method in place
    of its own; the guards, their order and their answers are Litestar's.
    """
    for route in app.routes:
        handlers = route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]
        for handler in handlers:
            if not hasattr(handler, "__dict__"):
                continue  # Litestar's own OPTIONS handlers (slotted, unguarded) keep theirs
            handler.authorize_connection = MethodType(_authorize_in_place, handler)  # type: ignore[method-assign]
    return app


def customer_scope(caller: Caller) -> str | None:
    """Whose orders the caller may see: a customer's own; operators see every order."""
    return caller.subject if caller.role is Role.CUSTOMER else None
