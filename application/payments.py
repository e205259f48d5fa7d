"""The payment processor, as Farmacy needs it: a port. Adapters live in interfaces/."""

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


class PaymentProcessor(Protocol):
    """An external processor. The order id is the idempotency key of every call: asking twice
    about one order never charges twice."""

    def request_authorisation(
        self, order_id: str, amount: Decimal, currency: str
    ) -> PaymentAnswer | None:
        """Ask for the money. None: no answer now (it may come by webhook, or never)."""
        ...

    def void(self, order_id: str, payment_ref: str) -> None:
        """Give back an authorisation for an order that ended before it could be used."""
        ...

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        """Return the money of a paid order that cannot be fulfilled."""
        ...


class AlwaysAuthorise:
    """The processor of the demo and of local runs: every payment goes through at once."""

    def request_authorisation(
        self, order_id: str, amount: Decimal, currency: str
    ) -> PaymentAnswer | None:
        return PaymentAnswer(PaymentOutcome.AUTHORISED, f"demo-{order_id[:8]}")

    def void(self, order_id: str, payment_ref: str) -> None:
        return None

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        return None
