"""What the payment processor tells Farmacy through its webhook, taken in once per message.

A message is idempotent on its id (Standard Webhooks' `webhook-id`): the order records the
ids it took in, so a repeat, even after a restart, changes nothing. Messages may come in any
order: one for an order the flow has not opened yet opens it first (from the fridge's
reservation, as a cancel does); an authorisation for an order that already ended is recorded
as too late and voided by the flow; a decline after an authorisation changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from application.causes import joining
from application.orders import Ordering, OrderMoved
from domain.errors import IllegalTransition
from domain.order import OrderStatus

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PaymentMessage:
    message_id: str
    order_id: str
    outcome: str  # authorised or declined
    payment_ref: str
    fridge_id: str = ""  # echoed from the authorisation request, to open the order first
    reason: str = ""


def take_in(ordering: Ordering, message: PaymentMessage) -> OrderMoved:
    """Move the order on from the processor's message; a repeat or a stale one changes nothing.

    What it records joins the order's conversation (the correlation id it was placed with):
    the processor knows nothing of it, and `farmacy trace` follows an order by it. (An order
    this message opens, ahead of the flow, is born in the webhook's own conversation.)"""
    if message.fridge_id:
        ordering.ensure_order(message.order_id, message.fridge_id)
    with joining(ordering.conversation(message.order_id)):
        return _take_in(ordering, message)


def _take_in(ordering: Ordering, message: PaymentMessage) -> OrderMoved:
    order = ordering.order(message.order_id)
    if order.has_seen(message.message_id):
        log.info("payment_message_repeated", webhook_id=message.message_id)
        return OrderMoved(message.order_id, OrderStatus(order.status), ordering.store.position())
    try:
        if message.outcome == "authorised":
            return ordering.authorise_payment(
                message.order_id, message.payment_ref, message.message_id
            )
        reason = f"declined: {message.reason or 'by the card issuer'}"
        return ordering.fail_payment(message.order_id, reason, message.message_id)
    except IllegalTransition as stale:
        log.info("payment_message_stale", webhook_id=message.message_id, why=str(stale))
        order = ordering.order(message.order_id)
        return OrderMoved(message.order_id, OrderStatus(order.status), ordering.store.position())
