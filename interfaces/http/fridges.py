"""What the kitchen and the fridges report: deliveries, counts, pickups."""

from __future__ import annotations

from litestar import Controller, post

from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.schemas import JSONBody, Side


class Fridges(Controller):
    path = "/fridges/{fridge_id:str}"
    tags = ["fridges"]

    @post("/deliveries", guards=[allow(Role.KITCHEN, Role.OPERATOR)], sync_to_thread=True)
    def deliver(
        self, fridge_id: schemas.FridgeInPath, data: JSONBody[schemas.Delivery], side: Side
    ) -> schemas.Recorded:
        lines = schemas.lines_of(data.lines)
        done = side.stock.deliver(fridge_id, data.delivery_id, lines, data.best_before)
        return schemas.Recorded(bool(done.value), done.position)

    @post("/counts", guards=[allow(Role.FRIDGE, Role.OPERATOR)], sync_to_thread=True)
    def count(
        self, fridge_id: schemas.FridgeInPath, data: JSONBody[schemas.CountReport], side: Side
    ) -> schemas.Recorded:
        done = side.stock.report_counts(fridge_id, data.report_id, data.taken_at, data.counts)
        return schemas.Recorded(bool(done.value), done.position)

    @post("/pickups", guards=[allow(Role.FRIDGE, Role.OPERATOR)], sync_to_thread=True)
    def pick_up(
        self, fridge_id: schemas.FridgeInPath, data: JSONBody[schemas.Pickup], side: Side
    ) -> schemas.OrderMoved:
        moved = side.ordering.pick_up(fridge_id, data.order_id)
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)
