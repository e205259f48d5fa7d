"""Who may call what: bearer JWTs signed with FARMACY_SECRET, a role claim, guards per route.

The token's subject is the customer id (role customer) or the fridge id (role fridge). A
missing or bad token is 401; a valid token with the wrong role (or another fridge's id) is 403.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token
from litestar.types import Guard
from msgspec import Struct


class Role(StrEnum):
    CUSTOMER = "customer"
    KITCHEN = "kitchen"
    FRIDGE = "fridge"
    OPERATOR = "operator"
    PAYMENT = "payment"


class Caller(Struct, frozen=True):
    """The authenticated caller: `connection.user` on every protected route."""

    role: Role
    subject: str


PUBLIC = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema"]


def retrieve_caller(token: Token, _: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    role = str(token.extras.get("role"))
    if role not in set(Role):
        return None  # a token we signed but without a known role is no credential: 401
    return Caller(Role(role), token.sub)


def jwt_auth(secret: str) -> JWTAuth[Caller, Token]:
    return JWTAuth[Caller, Token](
        token_secret=secret,
        retrieve_user_handler=retrieve_caller,
        exclude=PUBLIC,
        exclude_opt_key="public",
        description="Bearer JWT signed with FARMACY_SECRET; `farmacy token ROLE` prints one.",
    )


def issue_token(
    secret: str, role: Role, subject: str, lifetime: timedelta = timedelta(days=1)
) -> str:
    """A bearer token for `role`, acting as `subject` (the customer or fridge id)."""
    return jwt_auth(secret).create_token(
        identifier=subject, token_expiration=lifetime, token_extras={"role": str(role)}
    )


def allow(*roles: Role) -> Guard:
    """Only these roles; on a route about one fridge, a fridge only for the one its token names."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        caller = connection.scope.get("user")
        if not isinstance(caller, Caller):  # e.g. OPTIONS, which JWTAuth lets through
            raise NotAuthorizedException("a bearer token is needed")
        if caller.role not in roles:
            raise PermissionDeniedException(f"the {caller.role} role may not do this")
        fridge_id = connection.path_params.get("fridge_id")
        if caller.role is Role.FRIDGE and fridge_id is not None and fridge_id != caller.subject:
            raise PermissionDeniedException(f"this token speaks for fridge {caller.subject} only")

    return guard


def customer_scope(caller: Caller) -> str | None:
    """Whose orders the caller may see: a customer's own; operators see every order."""
    return caller.subject if caller.role is Role.CUSTOMER else None
