"""What the kitchen and the fridges report: deliveries, counts, pickups."""

from __future__ import annotations

from litestar import Controller, post

from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.schemas import JSONBody, Lane, Side


class Fridges(Controller):
    path = "/fridges/{fridge_id:str}"
    tags = ["fridges"]

    @post("/deliveries", guards=[allow(Role.KITCHEN, Role.OPERATOR)])
    async def deliver(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.Delivery],
        side: Side,
        lane: Lane,
    ) -> schemas.Recorded:
        lines = schemas.lines_of(data.lines)
        done = await lane.run(
            side.stock.deliver, fridge_id, data.delivery_id, lines, data.best_before
        )
        return schemas.Recorded(bool(done.value), done.position)

    @post("/counts", guards=[allow(Role.FRIDGE, Role.OPERATOR)])
    async def count(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.CountReport],
        side: Side,
        lane: Lane,
    ) -> schemas.Recorded:
        done = await lane.run(
            side.stock.report_counts, fridge_id, data.report_id, data.taken_at, data.counts
        )
        return schemas.Recorded(bool(done.value), done.position)

    @post("/pickups", guards=[allow(Role.FRIDGE, Role.OPERATOR)])
    async def pick_up(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.Pickup],
        side: Side,
        lane: Lane,
    ) -> schemas.OrderMoved:
        moved = await lane.run(side.ordering.pick_up, fridge_id, data.order_id)
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)
