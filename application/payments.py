"""The payment processor, as Farmacy needs it: a port. Adapters live in interfaces/payments/.

Authorise when the order is born (the money is held, not taken), capture when the meals are
handed over, void an authorisation that will never be captured, refund captured money only.
Every call carries an idempotency key of the order id and the step (`key`), so the
fulfilment flow may repeat any call after a crash and the processor moves the money once.
Card data never enters Farmacy: the processor holds it, Farmacy holds its reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class PaymentOutcome(StrEnum):
    AUTHORISED = "authorised"
    DECLINED = "declined"


@dataclass(frozen=True)
class PaymentAnswer:
    outcome: PaymentOutcome
    payment_ref: str
    reason: str = ""


class PaymentUnavailable(Exception):
    """The processor did not answer (timeouts, 5xx) within the adapter's retries: the step
    is tried again later, with the same idempotency key."""


class PaymentRefused(Exception):
    """The processor refused a call outright (a 4xx: voiding what was captured, capturing what
    was voided). Repeating it will not help; the step is recorded as moot."""


def key(order_id: str, step: str) -> str:
    """The idempotency key of one step of one order: asking twice moves the money once."""
    return f"{order_id}:{step}"


@dataclass(frozen=True)
class Authorisation:
    """What the processor is asked to hold. `fridge_id` comes back with its webhook, so a
    webhook that overtakes the order's opening can open it first."""

    order_id: str
    amount: Decimal
    currency: str
    fridge_id: str = ""


class PaymentProcessor(Protocol):
    """An external processor. Each call is idempotent on `key(order_id, step)`."""

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        """Ask to hold the money. None: no answer yet (it comes by webhook, or never)."""
        ...

    def capture(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        """Take held money: the meals were handed over (or kept for a no-show under charge)."""
        ...

    def void(self, order_id: str, payment_ref: str) -> None:
        """Give back an authorisation that will never be captured."""
        ...

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        """Return captured money."""
        ...
