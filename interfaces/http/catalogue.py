"""Operators register cities, venues, fridges and meals: 201 new, 200 repeat, 409 different;
and set a meal's price (200, with `changed` false for a repeat)."""

from __future__ import annotations

from litestar import Controller, Response, post, put

from application.catalogue import Registered
from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.contract import answers, creates, located, repeat
from interfaces.http.schemas import JSONBody, Write


def answer(
    natural_id: str, done: Registered, where: str | None = None
) -> Response[schemas.Registered]:
    """201 for a new one (with `Location` when it can be read at `where`), 200 for a repeat."""
    body = schemas.Registered(natural_id, done.created, done.position)
    if not done.created:
        return Response(body, status_code=200)
    return Response(body, status_code=201, headers=located(where, natural_id) if where else None)


CITY, VENUE, FRIDGE = "/cities/{id}/venues", "/venues/{id}/menu", "/fridges/{id}/stock"


SAME = repeat(schemas.Registered, "it exists already with the same content: nothing changed")
CREATES = answers(409) | SAME
"""What each create answers besides 201: 200 for a repeat, 409 for other content."""


class CatalogueRoutes(Controller):
    tags = ["catalogue"]
    guards = [allow(Role.OPERATOR)]

    @post("/cities", responses=CREATES, opt=creates(CITY))
    async def city(
        self, data: JSONBody[schemas.NewCity], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(
            write.side.catalogue.register_city, data.city_id, data.name, data.timezone
        )
        return answer(data.city_id, done, CITY)

    @post("/venues", responses=CREATES | answers(404), opt=creates(VENUE))
    async def venue(
        self, data: JSONBody[schemas.NewVenue], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(
            write.side.catalogue.register_venue, data.venue_id, data.city_id, data.name
        )
        return answer(data.venue_id, done, VENUE)

    @post("/fridges", responses=CREATES | answers(404), opt=creates(FRIDGE))
    async def fridge(
        self, data: JSONBody[schemas.NewFridge], write: Write
    ) -> Response[schemas.Registered]:
        done = await write.run(write.side.catalogue.install_fridge, data.fridge_id, data.venue_id)
        return answer(data.fridge_id, done, FRIDGE)

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

    @put("/meals/{meal_id:str}/price")
    async def price(
        self, meal_id: schemas.MealInPath, data: JSONBody[schemas.NewPrice], write: Write
    ) -> schemas.MealPrice:
        """A meal's list price from now on: menus show it once their models have the event,
        orders priced after it pay it, orders placed before keep what they were charged."""
        done = await write.run(write.side.catalogue.reprice_meal, meal_id, data.price)
        return schemas.MealPrice(
            done.meal_id, f"{done.price:.2f}", done.currency, done.changed, done.position
        )
