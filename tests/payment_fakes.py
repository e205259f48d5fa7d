"""An in-process payment processor for tests: the port's fake (production always calls one
over HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from application.payments import Authorisation, PaymentAnswer, PaymentOutcome, key


@dataclass
class AlwaysAuthorise:
    """An in-process fake for tests: every payment goes through at once, and every call is
    kept (by idempotency key) so a test can see what moved, and how often."""

    calls: dict[str, Decimal] = field(default_factory=dict)

    def request_authorisation(self, request: Authorisation) -> PaymentAnswer | None:
        self.calls.setdefault(key(request.order_id, "authorise"), request.amount)
        return PaymentAnswer(PaymentOutcome.AUTHORISED, f"demo-{request.order_id[:8]}")

    def capture(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        self.calls.setdefault(key(order_id, "capture"), amount)

    def void(self, order_id: str, payment_ref: str) -> None:
        self.calls.setdefault(key(order_id, "void"), Decimal(0))

    def refund(self, order_id: str, payment_ref: str, amount: Decimal, currency: str) -> None:
        self.calls.setdefault(key(order_id, "refund"), amount)
