"""What the kitchen and the fridges report: deliveries, counts, pickups.

A delivery or count report is created once under its id: 201 when it was recorded, 200 when
it repeats one already recorded (or, for a count, is older than the last applied), 409 when
its id was used for other lines or counts.
"""

from __future__ import annotations

from litestar import Controller, Response, post

from application.fridge_writer import Decided
from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.contract import answers, repeat
from interfaces.http.schemas import JSONBody, Write


class FridgeRoutes(Controller):
    path = "/fridges/{fridge_id:str}"
    tags = ["fridges"]

    @post(
        "/deliveries",
        guards=[allow(Role.KITCHEN, Role.OPERATOR)],
        responses=answers(409) | repeat(schemas.Recorded, "this delivery was recorded before"),
    )
    async def deliver(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.Delivery],
        write: Write,
    ) -> Response[schemas.Recorded]:
        lines = schemas.lines_of(data.lines)
        done = await write.run(
            write.side.stock.deliver, fridge_id, data.delivery_id, lines, data.best_before
        )
        return recorded(done)

    @post(
        "/counts",
        guards=[allow(Role.FRIDGE, Role.OPERATOR)],
        responses=answers(409)
        | repeat(schemas.Recorded, "this report was recorded before, or is older than the last"),
    )
    async def count(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.CountReport],
        write: Write,
    ) -> Response[schemas.Recorded]:
        done = await write.run(
            write.side.stock.report_counts, fridge_id, data.report_id, data.taken_at, data.counts
        )
        return recorded(done)

    @post(
        "/pickups",
        guards=[allow(Role.FRIDGE, Role.OPERATOR)],
        responses=answers(409),
    )
    async def pick_up(
        self,
        fridge_id: schemas.FridgeInPath,
        data: JSONBody[schemas.Pickup],
        write: Write,
    ) -> schemas.OrderMoved:
        moved = await write.run(write.side.ordering.pick_up, fridge_id, data.order_id)
        return schemas.OrderMoved(moved.order_id, moved.status, moved.position)


def recorded(done: Decided[bool]) -> Response[schemas.Recorded]:
    return Response(
        schemas.Recorded(done.value, done.position), status_code=201 if done.value else 200
    )
