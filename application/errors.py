"""Errors of the application layer: what went wrong around the domain, not inside it."""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of the errors below."""


class NotFound(ApplicationError):
    def __init__(self, kind: str, natural_id: str) -> None:
        self.kind = kind
        self.natural_id = natural_id
        super().__init__(f"no {kind} {natural_id}")


class NotYourOrder(ApplicationError):
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} belongs to another customer")


class TooBusy(ApplicationError):
    """Version conflicts kept winning; the caller may try again shortly."""

    retry_after_seconds = 1

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        super().__init__(f"{what} is too busy: conflicting writes for {seconds:g}s, try again")


class StoreUnavailable(ApplicationError):
    """The configured store cannot be reached. The message names the setting to check."""

    retry_after_seconds = 5
