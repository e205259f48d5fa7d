"""Operators register cities, venues, fridges and meals: 201 new, 200 repeat, 409 different."""

from __future__ import annotations

from litestar import Controller, Response, post

from application.catalogue import Registered
from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.contract import answers, repeat
from interfaces.http.schemas import JSONBody, Write


def answer(natural_id: str, done: Registered) -> Response[schemas.Registered]:
    body = schemas.Registered(natural_id, done.created, done.position)
    return Response(body, status_code=201 if done.created else 200)


SAME = repeat(schemas.Registered, "it exists already with the same content: nothing changed")
CREATES = answers(409) | SAME
"""What each create answers besides 201: 200 for a repeat, 409 for other content."""


class CatalogueRoutes(Controller):
    tags = ["catalogue"]
    guards = [allow(Role.OPERATOR)]

    @post("/cities", responses=CREATES)
    async def city(
        self, data: JSONBody[schemas.NewCity], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(
            write.side.catalogue.register_city, data.city_id, data.name, data.timezone
        )
        return answer(data.city_id, done)

    @post("/venues", responses=CREATES | answers(404))
    async def venue(
        self, data: JSONBody[schemas.NewVenue], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(
            write.side.catalogue.register_venue, data.venue_id, data.city_id, data.name
        )
        return answer(data.venue_id, done)

    @post("/fridges", responses=CREATES | answers(404))
    async def fridge(
        self, data: JSONBody[schemas.NewFridge], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(write.side.catalogue.install_fridge, data.fridge_id, data.venue_id)
        return answer(data.fridge_id, done)

    @post("/meals", responses=CREATES)
    async def meal(
        self, data: JSONBody[schemas.NewMeal], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(
            write.side.catalogue.register_meal,
            data.meal_id,
            data.name,
            data.price,
            data.currency,
            dict(data.details),
        )
        return answer(data.meal_id, done)
