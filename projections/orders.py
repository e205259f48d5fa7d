"""Orders: each order's status and history, per order and per customer. Sharded by order.

An order's row is born with the fridge's reservation event, which carries everything the
order was promised, so an order is readable as soon as its 201 is (through its position),
before the fulfilment flow has opened its `Order`. The `Order`'s own `Placed` event then
finds the row there. Reservations recorded before orders were born in the fridge carry no
terms; their row comes from `Placed`, as it always did.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from domain.fridge import Fridge
from domain.order import Order
from projections.database import Tx
from projections.order_rows import OrderRows
from projections.projection import Projection, Shard, View, handles

STATUS_AFTER = {
    Order.PaymentAuthorised: "paid",
    Order.ReadyForPickup: "ready_for_pickup",
    Order.PickedUp: "picked_up",
    Order.Cancelled: "cancelled",
    Order.PaymentFailed: "payment_failed",
    Order.Expired: "expired",
    Order.Refunded: "refunded",
    Order.NotCollected: "not_collected",
}

MONEY_STEPS = {
    Order.AuthorisedTooLate: "authorised_too_late",
    Order.PaymentCaptured: "payment_captured",
    Order.PaymentVoided: "payment_voided",
    Order.PaymentRefunded: "payment_refunded",
}
"""What became of an order's money: a step in its history that leaves its status as it is."""


class Orders(Projection):
    """Each order from its birth (the fridge's reservation, or `Placed` for older ones) through
    every step: what those events mean for `OrderRows`. Sharded by order."""

    name = "orders"
    tables: ClassVar[dict[str, str]] = {
        "orders": (
            "order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, fridge_id TEXT NOT NULL, "
            "venue_id TEXT NOT NULL, city_id TEXT NOT NULL, status TEXT NOT NULL, "
            "lines TEXT NOT NULL, total TEXT NOT NULL, currency TEXT NOT NULL, "
            "placed_at TEXT NOT NULL, payment_due_by TEXT NOT NULL, updated_at TEXT NOT NULL"
        ),
        "history": (
            "order_id TEXT, version BIGINT, status TEXT NOT NULL, at TEXT NOT NULL, "
            "detail TEXT, PRIMARY KEY (order_id, version)"
        ),
        # Fridge events name their fridge by stream: every shard keeps every fridge's names.
        "fridges": (
            "stream TEXT PRIMARY KEY, fridge_id TEXT NOT NULL, venue_id TEXT NOT NULL, "
            "city_id TEXT NOT NULL"
        ),
    }
    indexes: ClassVar[dict[str, str]] = {"by_customer": "orders(customer_id, placed_at)"}

    def __init__(self, generation: int = 1, shard: Shard | None = None) -> None:
        super().__init__(generation, shard)
        self.orders = OrderRows(self.t)

    def views(self) -> Iterable[View]:
        return (*super().views(), self.orders)

    @handles(Fridge.Installed)
    def _installed(self, event: Fridge.Installed, tx: Tx, position: int) -> None:
        self.orders.fridge_installed(
            tx, str(event.originator_id), event.fridge_id, event.venue_id, event.city_id
        )

    @handles(Fridge.MealsReserved)
    def _reserved(self, event: Fridge.MealsReserved, tx: Tx, position: int) -> None:
        if event.priced_lines is None or event.total is None or not self.shard.owns(event.order_id):
            return  # reserved before orders were born in the fridge: `Placed` makes its row
        fridge = self.orders.fridge_named(tx, str(event.originator_id))
        if fridge is None:  # a model built before it kept fridges: `Placed` makes the row
            return
        self.orders.born(
            tx,
            (event.order_id, event.customer_id, *fridge),
            event.priced_lines,
            event.total,
            event.currency,
            event.reserved_at,
            event.expires_at,
            event.timestamp,
        )

    @handles(Order.Placed)
    def _placed(self, event: Order.Placed, tx: Tx, position: int) -> None:
        if not self.shard.owns(event.order_id):
            return
        self.orders.born(
            tx,
            (event.order_id, event.customer_id, event.fridge_id, event.venue_id, event.city_id),
            event.lines,
            event.total,
            event.currency,
            event.placed_at,
            event.payment_due_by,
            event.timestamp,
        )

    @handles(*STATUS_AFTER)
    def _moved(self, event: Order.Event, tx: Tx, position: int) -> None:
        order_id = str(event.originator_id)
        if not self.shard.owns(order_id):
            return
        detail = getattr(event, "reason", None)  # never the processor's reference
        self.orders.moved(
            tx,
            order_id,
            event.originator_version,
            STATUS_AFTER[type(event)],
            event.timestamp,
            detail,
        )

    @handles(*MONEY_STEPS)
    def _money(self, event: Order.Event, tx: Tx, position: int) -> None:
        order_id = str(event.originator_id)
        if not self.shard.owns(order_id):
            return
        detail = getattr(event, "reason", None)
        step = MONEY_STEPS[type(event)]
        self.orders.noted(tx, order_id, event.originator_version, step, event.timestamp, detail)
