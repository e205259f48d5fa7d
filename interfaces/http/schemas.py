"""Request and response bodies: msgspec Structs whose constraints show in the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from msgspec import Meta, Struct

from ops.bootstrap import WriteSide

Side = NamedDependency[WriteSide]
"""The write side, provided from the app (a parameter named `side`)."""

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
FridgeInPath = Annotated[str, PathParameter(pattern=ID_PATTERN, description="the fridge's id")]
OrderInPath = Annotated[str, PathParameter(pattern=r"^[0-9a-f-]{36}$", description="order id")]
__all__ = ["JSONBody", "Side"]

NaturalId = Annotated[
    str,
    Meta(
        pattern=ID_PATTERN,
        description="chosen by the caller: lower-case letters, digits and dashes",
        examples=["kreuzberg-gym-1"],
    ),
]
OrderId = Annotated[str, Meta(pattern=r"^[0-9a-f-]{36}$", description="as POST /orders answered")]
Quantity = Annotated[int, Meta(gt=0, le=1000, description="units, a positive integer")]
Counted = Annotated[int, Meta(ge=0, le=10_000, description="units found on the shelves")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Amount = Annotated[str, Meta(pattern=r"^[0-9]{1,7}(\.[0-9]{1,2})?$", examples=["8.50"])]
Moment = Annotated[datetime, Meta(tz=True, description="ISO 8601 with a timezone")]
Position = Annotated[
    int | None, Meta(description="position of the command's last event, for read-your-writes")
]


class Line(Struct, forbid_unknown_fields=True):
    meal_id: NaturalId
    quantity: Quantity


Lines = Annotated[list[Line], Meta(min_length=1, max_length=50)]


def lines_of(lines: list[Line]) -> dict[str, int]:
    """Lines as the services take them; a meal named twice counts once per line, summed."""
    merged: dict[str, int] = {}
    for line in lines:
        merged[line.meal_id] = merged.get(line.meal_id, 0) + line.quantity
    return merged


# --- orders -------------------------------------------------------------------------------


class PlaceOrder(Struct, forbid_unknown_fields=True):
    fridge_id: NaturalId
    lines: Lines


class OrderPlaced(Struct):
    order_id: str
    status: str
    total: str
    payment_due_by: datetime
    position: Position


class PricedLine(Struct):
    meal_id: str
    quantity: int
    unit_price: str


class OrderDetails(Struct):
    order_id: str
    status: str
    fridge_id: str
    venue_id: str
    lines: list[PricedLine]
    total: str
    currency: str
    placed_at: datetime
    payment_due_by: datetime


class OrderMoved(Struct):
    order_id: str
    status: str
    position: Position


# --- fridges ------------------------------------------------------------------------------


class Delivery(Struct, forbid_unknown_fields=True):
    delivery_id: NaturalId
    lines: Lines
    best_before: date


class CountReport(Struct, forbid_unknown_fields=True):
    report_id: NaturalId
    taken_at: Moment
    counts: Annotated[dict[NaturalId, Counted], Meta(min_length=1, max_length=200)]


class Pickup(Struct, forbid_unknown_fields=True):
    order_id: OrderId


class Recorded(Struct):
    """A fridge command's answer: `recorded` is false when it was a repeat that changed nothing."""

    recorded: bool
    position: Position


# --- catalogue ----------------------------------------------------------------------------


class NewCity(Struct, forbid_unknown_fields=True):
    city_id: NaturalId
    name: Name
    timezone: Annotated[str, Meta(min_length=1, max_length=64, examples=["Europe/Berlin"])]


class NewVenue(Struct, forbid_unknown_fields=True):
    venue_id: NaturalId
    city_id: NaturalId
    name: Name


class NewFridge(Struct, forbid_unknown_fields=True):
    fridge_id: NaturalId
    venue_id: NaturalId


Detail = Annotated[str, Meta(max_length=2000)] | int | float | bool


class NewMeal(Struct, forbid_unknown_fields=True):
    meal_id: NaturalId
    name: Name
    price: Amount
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
    details: Annotated[dict[Annotated[str, Meta(max_length=64)], Detail], Meta(max_length=50)] = {}


class Registered(Struct):
    """`created` is false when the same thing was registered before (a repeat, answered 200)."""

    id: str
    created: bool
    position: Position


# --- payments and operations ---------------------------------------------------------------


class PaymentEvent(Struct, forbid_unknown_fields=True):
    order_id: OrderId
    outcome: Literal["authorised", "declined"]
    payment_ref: Annotated[str, Meta(min_length=1, max_length=200)]


class Health(Struct):
    status: str
    position: int | None = None
