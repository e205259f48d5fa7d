"""Domain errors carry what the caller needs to decide what to do next."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A command broke a business rule. Nothing was recorded."""


class InvalidRequest(DomainError):
    """The command itself is malformed (bad id, non-positive quantity, naive time)."""


class SoldOut(DomainError):
    """A reservation did not fit; it was refused whole."""

    def __init__(self, fridge_id: str, available: Mapping[str, int]) -> None:
        self.fridge_id = fridge_id
        self.available = dict(available)
        short = ", ".join(f"{meal}: {n} left" for meal, n in sorted(self.available.items()))
        super().__init__(f"fridge {fridge_id} cannot serve this order ({short})")


class FridgeUnavailable(DomainError):
    """The fridge is offline or retired and takes no orders."""

    def __init__(self, fridge_id: str, status: str) -> None:
        self.fridge_id = fridge_id
        self.status = status
        super().__init__(f"fridge {fridge_id} is {status}")


class ReservationNotFound(DomainError):
    def __init__(self, fridge_id: str, order_id: str) -> None:
        self.fridge_id = fridge_id
        self.order_id = order_id
        super().__init__(f"fridge {fridge_id} holds no reservation for order {order_id}")


class ReservationClosed(DomainError):
    """The reservation was already released or picked up."""

    def __init__(self, fridge_id: str, order_id: str, outcome: str) -> None:
        self.fridge_id = fridge_id
        self.order_id = order_id
        self.outcome = outcome
        super().__init__(f"reservation for order {order_id} at {fridge_id} is already {outcome}")


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key (so the same order id) came back with a different request."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(
            f"this Idempotency-Key already placed order {order_id} with a different request"
        )


class NotPaidYet(DomainError):
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} is not paid: its meals cannot be picked up")


class IllegalTransition(DomainError):
    """An order was asked to move where its state machine does not go."""

    def __init__(self, order_id: str, status: str, action: str) -> None:
        self.order_id = order_id
        self.status = status
        self.action = action
        super().__init__(f"order {order_id} is {status}: cannot {action}")


class AlreadyExists(DomainError):
    """Something with this id exists with different content."""

    def __init__(self, kind: str, natural_id: str) -> None:
        self.kind = kind
        self.natural_id = natural_id
        super().__init__(f"{kind} {natural_id} already exists with different details")
