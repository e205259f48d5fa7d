"""Request and response bodies: msgspec Structs whose constraints show in the OpenAPI document."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import Meta, Struct

from domain.values import MOST_UNITS
from interfaces.http.commands import Commands
from interfaces.http.reading import ReadSide
from ops.root import WriteSide

Side = NamedDependency[WriteSide]
"""The write side, provided from the app (a parameter named `side`)."""
Read = NamedDependency[ReadSide]
"""The read models' databases, provided from the app (a parameter named `read`)."""
Write = NamedDependency[Commands]
"""The write side behind the command lane, for command routes (a parameter named `write`)."""

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
FridgeInPath = Annotated[str, PathParameter(pattern=ID_PATTERN, description="the fridge's id")]
VenueInPath = Annotated[str, PathParameter(pattern=ID_PATTERN, description="the venue's id")]
CityInPath = Annotated[str, PathParameter(pattern=ID_PATTERN, description="the city's id")]
MealInPath = Annotated[str, PathParameter(pattern=ID_PATTERN, description="the meal's id")]
OrderInPath = Annotated[str, PathParameter(pattern=r"^[0-9a-f-]{36}$", description="order id")]
__all__ = ["JSONBody", "Side", "Write"]

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
Counted = Annotated[int, Meta(ge=0, le=MOST_UNITS, description="units found on the shelves")]
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


class FridgeOrder(Struct, forbid_unknown_fields=True):
    """`POST /fridges/{fridge_id}/orders`: the fridge is in the path, where a load balancer
    can hash on it."""

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


class OrderMoved(Struct):
    order_id: str
    status: str
    position: Position


# --- fridges ------------------------------------------------------------------------------


class Delivery(Struct, forbid_unknown_fields=True):
    """What the kitchen brought: at most MOST_UNITS (10,000) units in all, what one count
    may report of one meal."""

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


DetailKey = Annotated[str, Meta(min_length=1, max_length=64)]
Figure = (
    Annotated[int, Meta(ge=-1_000_000_000, le=1_000_000_000)]
    | Annotated[float, Meta(ge=-1e9, le=1e9)]
)
Detail = (
    Annotated[str, Meta(max_length=2000)]
    | Figure
    | bool
    | Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=50)]
    | Annotated[dict[DetailKey, Figure], Meta(max_length=50)]
)
"""A detail of a meal: text, a number, a flag, a list of tags (allergens, diet tags), or named
figures (nutrition per portion)."""


class NewMeal(Struct, forbid_unknown_fields=True):
    meal_id: NaturalId
    name: Name
    price: Amount
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
    details: Annotated[
        dict[DetailKey, Detail],
        Meta(
            max_length=50,
            examples=[{"allergens": ["soy", "sesame"], "diet_tags": ["vegan"], "kcal": 520}],
        ),
    ] = {}


class NewPrice(Struct, forbid_unknown_fields=True):
    """`PUT /meals/{meal_id}/price`: the meal's list price from now on, in its currency."""

    price: Amount


class MealPrice(Struct):
    """`changed` is false when the meal had this price already (a repeat)."""

    meal_id: str
    price: str
    currency: str
    changed: bool
    position: Position


class Registered(Struct):
    """`created` is false when the same thing was registered before (a repeat, answered 200)."""

    id: str
    created: bool
    position: Position


# --- payments and operations ---------------------------------------------------------------


class PaymentEvent(Struct, forbid_unknown_fields=True):
    """A payment processor's message (the body of a Standard Webhooks request)."""

    order_id: OrderId
    outcome: Literal["authorised", "declined"]
    payment_ref: Annotated[str, Meta(min_length=1, max_length=200)]
    type: Annotated[str, Meta(max_length=64)] = ""
    fridge_id: Annotated[str, Meta(pattern=r"^([a-z0-9][a-z0-9-]{0,63})?$")] = ""
    reason: Annotated[str, Meta(max_length=200)] = ""


class Health(Struct):
    status: str
    position: int | None = None


# --- reading: every answer says how fresh it is ----------------------------------------------

MinPosition = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=2**62,
        description="wait (up to 2 s) until the read model reflects this position, e.g. the "
        "`position` a command answered; 503 with Retry-After if it does not get there in time, "
        "422 if the store has never written it",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="at most this many items")]
After = Annotated[
    str | None,
    QueryParameter(
        max_length=400,
        description="cursor: the `next` of the previous page (opaque); absent for the first page",
    ),
]


class Freshness(Struct, kw_only=True):
    """`position`: the event-store position the answer reflects. `as_of`: when the newest event
    it reflects was recorded. `age_seconds`: now minus `as_of` (grows on a quiet store even
    though nothing is missing; compare positions to know whether a write is included)."""

    position: int
    as_of: datetime | None
    age_seconds: float | None


class MenuEntry(Struct):
    meal_id: str
    name: str
    price: str
    currency: str
    details: dict[str, Any]
    available: int
    promotional_price: str | None
    """The best promotion's price while one runs (from its first second to its last), else
    null; `price` stays the regular price."""


class FridgeUnits(Struct):
    fridge_id: str
    available: int


class VenueMenuEntry(MenuEntry):
    fridges: list[FridgeUnits] = []
    """The venue's fridges that hold it to order, by id, and how many each: order from one
    of these (`available` is their sum)."""


class VenueMenu(Freshness, kw_only=True):
    venue_id: str
    items: list[VenueMenuEntry]
    stale_fridges: list[str] = []
    """The venue's fridges with no count for longer than the fridge cloud allows: what they
    hold may differ from what the menu says."""


class VenueFridgeEntry(Struct):
    fridge_id: str
    state: str
    """active; offline (sells nothing); stale (active, but the fridge cloud has had no count
    from it for too long: what it holds may differ from the menu)."""
    stale_since: str | None = None


class VenueFridges(Freshness, kw_only=True):
    venue_id: str
    fridges: list[VenueFridgeEntry]


class CityMenuEntry(MenuEntry):
    venues: list[str]  # venue ids with at least one unit available


class CityMenu(Freshness, kw_only=True):
    city_id: str
    items: list[CityMenuEntry]
    next: str | None


class VenueEntry(Struct):
    venue_id: str
    name: str


class CityVenues(Freshness, kw_only=True):
    city_id: str
    items: list[VenueEntry]
    next: str | None


class MealStock(Struct):
    meal_id: str
    on_hand: int
    fresh: int
    held: int
    available: int


class FridgeStock(Freshness, kw_only=True):
    fridge_id: str
    venue_id: str
    status: str
    last_report_age_seconds: float | None
    meals: list[MealStock]
    stale_since: str | None = None
    """When the fridge cloud's poller marked it stale (no count for too long); null once it
    reports again."""


class RefillEntry(Struct):
    fridge_id: str
    venue_id: str
    meal_id: str
    target: int
    sold_recently: int
    sellable_tomorrow: int
    held: int
    expiring: int
    to_deliver: int
    # with `?date=` (the plan for a date, from sales by weekday), also:
    date: str | None = None
    sold_by_weekday: float | None = None  # mean app + walk-up sales on the date's weekday
    expected_waste: int | None = None  # mean units thrown away on that weekday, rounded up
    delivered: int | None = None  # delivered on the date
    short: int | None = None  # to_deliver less delivered, when positive
    over: int | None = None  # delivered less to_deliver, when positive


class RefillPlan(Freshness, kw_only=True):
    days: int
    items: list[RefillEntry]
    next: str | None
    date: str | None = None
    weeks: int | None = None


class OrderStep(Struct):
    status: str
    at: datetime
    detail: str | None


class OrderSummary(Struct):
    order_id: str
    status: str
    fridge_id: str
    venue_id: str
    lines: list[PricedLine]
    total: str
    currency: str
    placed_at: datetime
    payment_due_by: datetime
    history: list[OrderStep]


class OrderDetails(OrderSummary, kw_only=True):
    """One order as the orders model has it, with how fresh that is (as in `Freshness`)."""

    position: int
    as_of: datetime | None
    age_seconds: float | None


class CustomerOrders(Freshness, kw_only=True):
    items: list[OrderSummary]
    next: str | None


class Readiness(Struct):
    status: str
    position: int | None = None
    reasons: list[str] = []
