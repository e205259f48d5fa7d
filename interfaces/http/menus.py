"""What is on sale: city and venue menus, a city's venues, a fridge's stock, the refill plan.

Menus are not public: any authenticated role may read them (customers sign in before they
browse; anonymous browsing would be one line in `auth.PUBLIC`). A fridge's token reads only
its own fridge's stock. Menus carry a weak ETag over their items, so a client polling with
`If-None-Match` gets 304 until what is on sale changes, whatever else the store records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar, cast

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from interfaces.http import schemas
from interfaces.http.auth import Role, allow
from interfaces.http.errors import problem
from interfaces.http.menu_cache import CachedMenu, EncodedVenueMenu, MenuReading
from interfaces.http.reading import Fresh, decode_cursor, page
from interfaces.http.schemas import After, Limit, MinPosition, Read, Side

EVERYONE = allow(*Role)
Days = Annotated[int, QueryParameter(ge=1, le=28, description="recent days of sales to plan from")]
PlanDate = Annotated[
    date | None, QueryParameter(description="plan for this date (YYYY-MM-DD), by weekday")
]
Weeks = Annotated[int, QueryParameter(ge=1, le=12, description="weeks of sales a dated plan uses")]
Cover = Annotated[
    float,
    QueryParameter(
        ge=0.1, le=7.0, description="target stock in days of sales by weekday (a dated plan)"
    ),
]
S = TypeVar("S", bound=schemas.Freshness)
NOT_MODIFIED = {304: ResponseSpec(None, description="not modified: `If-None-Match` matched")}


def fresh(answer: Fresh) -> dict[str, Any]:
    return {"position": answer.position, "as_of": answer.as_of, "age_seconds": answer.age_seconds}


def read_headers(answer: Fresh) -> dict[str, str]:
    return {"X-Read-Position": str(answer.position), "Cache-Control": "no-cache"}


def conditional(
    request: Request[Any, Any, Any], body: S, answer: Fresh, *tagged_by: Any
) -> Response[S]:
    """The answer with a weak ETag over `tagged_by` (what is on sale), or 304 if the client
    has it."""
    digest = hashlib.blake2b(msgspec.json.encode(tagged_by), digest_size=16).hexdigest()
    headers = tagged(request, answer, digest)
    if headers is None:
        return cast(Response[S], not_modified(answer, digest))
    return Response(body, headers=headers)


def etag(digest: str) -> str:
    return f'W/"{digest}"'


def tagged(request: Request[Any, Any, Any], answer: Fresh, digest: str) -> dict[str, str] | None:
    """The headers of an answer whose ETag digest is `digest`, or None if the client has it
    (its `If-None-Match` names that tag, strong or weak, or `*`)."""
    wanted = request.headers.get("if-none-match")
    if wanted:
        tags = {tag.strip() for tag in wanted.split(",")}
        if etag(digest) in tags or digest in {tag.strip('W/"') for tag in tags} or "*" in tags:
            return None
    return {**read_headers(answer), "ETag": etag(digest)}


def not_modified(answer: Fresh, digest: str) -> Response[None]:
    return Response(
        content=None, status_code=304, headers={**read_headers(answer), "ETag": etag(digest)}
    )


def check_exists(side: Any, kind: str, natural_id: str) -> None:
    """The read model has never heard of it: the store says whether it exists (NotFound: 404)."""
    load: Callable[[str], Any] = getattr(side.catalogue, kind)
    load(natural_id)


def city_promotion(side: Any, meal_id: str, price: str, city_id: str, now: Any) -> str | None:
    """The best city-wide promotion's price now (a venue's own show on its menu), or None."""
    offer, _ = side.prices.promotional(meal_id, Decimal(price), None, city_id, now)
    return None if offer is None else str(offer)


class MenuRoutes(Controller):
    tags = ["menus"]
    guards = [EVERYONE]

    @get("/venues/{venue_id:str}/menu", responses=NOT_MODIFIED)
    async def venue_menu(
        self,
        request: Request[Any, Any, Any],
        venue_id: schemas.VenueInPath,
        menus: MenuReading,
        min_position: MinPosition = None,
    ) -> Response[schemas.VenueMenu]:
        """Every meal at the venue with the units a customer can order there now."""
        now = menus.side.clock()
        answer = await menus.read.venue_menu.menu(venue_id, now, min_position, menus.cache)
        menu: CachedMenu = answer.value
        if not menu.known:  # no fridge there: the store says whether the venue exists (404)
            await anyio.to_thread.run_sync(check_exists, menus.side, "venue", venue_id)
        headers = tagged(request, answer, menu.digest)
        if headers is None:
            return cast(Response[schemas.VenueMenu], not_modified(answer, menu.digest))
        body = EncodedVenueMenu(
            venue_id=venue_id,
            items=msgspec.Raw(menu.items),
            stale_fridges=list(menu.stale),
            **fresh(answer),
        )
        return cast(
            Response[schemas.VenueMenu],
            Response(msgspec.json.encode(body), media_type=MediaType.JSON, headers=headers),
        )

    @get("/venues/{venue_id:str}/fridges")
    async def venue_fridges(
        self, venue_id: schemas.VenueInPath, menus: MenuReading, min_position: MinPosition = None
    ) -> Response[schemas.VenueFridges]:
        """The venue's fridges by id, each active, offline or stale (active, but no count from
        it for too long), read with the venue's menu (as cheap as it)."""
        now = menus.side.clock()
        answer = await menus.read.venue_menu.menu(venue_id, now, min_position, menus.cache)
        menu: CachedMenu = answer.value
        if not menu.known:  # no fridge there: the store says whether the venue exists (404)
            await anyio.to_thread.run_sync(check_exists, menus.side, "venue", venue_id)
        fridges = [
            schemas.VenueFridgeEntry(f.fridge_id, f.state, f.stale_since) for f in menu.fridges
        ]
        body = schemas.VenueFridges(venue_id=venue_id, fridges=fridges, **fresh(answer))
        return Response(body, headers=read_headers(answer))

    @get("/cities/{city_id:str}/menu", responses=NOT_MODIFIED)
    async def city_menu(
        self,
        request: Request[Any, Any, Any],
        city_id: schemas.CityInPath,
        side: Side,
        read: Read,
        min_position: MinPosition = None,
        limit: Limit = 50,
        after: After = None,
    ) -> Response[schemas.CityMenu]:
        """The city's meals in meal-id order, each with its total units and where they are."""
        now = side.clock()
        decode_cursor(after, 1)
        answer = await read.city_catalogue.menu_now(city_id, now, min_position)
        meals = answer.value.meals
        if not answer.value.known and not meals:
            await anyio.to_thread.run_sync(check_exists, side, "city", city_id)
        chosen, next_cursor = page(meals, lambda m: (m.meal_id,), 1, after, limit)
        entries = [
            schemas.CityMenuEntry(
                m.meal_id,
                m.name,
                m.price,
                m.currency,
                m.details,
                m.available,
                city_promotion(side, m.meal_id, m.price, city_id, now),
                m.venues,
            )
            for m in chosen
        ]
        body = schemas.CityMenu(city_id=city_id, items=entries, next=next_cursor, **fresh(answer))
        return conditional(request, body, answer, entries, next_cursor)

    @get("/cities/{city_id:str}/venues", sync_to_thread=True)
    def city_venues(
        self,
        city_id: schemas.CityInPath,
        side: Side,
        read: Read,
        min_position: MinPosition = None,
        limit: Limit = 50,
        after: After = None,
    ) -> Response[schemas.CityVenues]:
        """The city's venues in venue-id order."""
        start = decode_cursor(after, 1)
        answer = read.city_catalogue.venues(
            city_id, start[0] if start else None, limit + 1, min_position
        )
        venues: list[tuple[str, str]] = answer.value
        if not venues and start is None:
            check_exists(side, "city", city_id)
        chosen, next_cursor = page(venues, lambda v: (v[0],), 1, None, limit)
        body = schemas.CityVenues(
            city_id=city_id,
            items=[schemas.VenueEntry(venue_id, name) for venue_id, name in chosen],
            next=next_cursor,
            **fresh(answer),
        )
        return Response(body, headers=read_headers(answer))

    @get("/fridges/{fridge_id:str}/stock")
    async def fridge_stock(
        self,
        fridge_id: schemas.FridgeInPath,
        side: Side,
        read: Read,
        min_position: MinPosition = None,
    ) -> Response[schemas.FridgeStock]:
        """Per meal: on hand, fresh (not past best-before), held by orders, available."""
        now = side.clock()
        answer = await read.fridge_stock.stock_now(fridge_id, now, min_position)
        report = answer.value
        if report is None:
            await anyio.to_thread.run_sync(check_exists, side, "fridge", fridge_id)
            raise problem(
                503,
                "read model behind",
                f"fridge {fridge_id} is installed but not in the stock view yet",
                retry_after=1,
            )
        body = schemas.FridgeStock(
            fridge_id=report.fridge_id,
            venue_id=report.venue_id,
            status=report.status,
            last_report_age_seconds=report.last_report_age_seconds,
            stale_since=report.stale_since,
            meals=[
                schemas.MealStock(m.meal_id, m.on_hand, m.fresh, m.held, m.available)
                for m in report.meals
            ],
            **fresh(answer),
        )
        return Response(body, headers=read_headers(answer))


class KitchenRoutes(Controller):
    path = "/kitchen"
    tags = ["kitchen"]
    guards = [allow(Role.KITCHEN, Role.OPERATOR)]

    @get("/refill-plan", sync_to_thread=True)
    def refill_plan(
        self,
        side: Side,
        read: Read,
        min_position: MinPosition = None,
        limit: Limit = 200,
        after: After = None,
        days: Days = 7,
        date: PlanDate = None,
        weeks: Weeks = 4,
        cover: Cover = 1.0,
    ) -> Response[schemas.RefillPlan]:
        """Per fridge and meal, what to deliver next (by fridge id, then meal id). With
        `date`, the plan for that date from sales by weekday over `weeks` weeks (app and
        walk-up purchases), expected waste, and what was delivered on it (short, over)."""
        decode_cursor(after, 2)
        now = side.clock()
        if date is not None:
            return dated_plan(read, now, date, weeks, cover, min_position, limit, after)
        answer = read.refill_plan.plan(now, days, min_position)
        chosen, next_cursor = page(
            answer.value, lambda line: (line.fridge_id, line.meal_id), 2, after, limit
        )
        items = [
            schemas.RefillEntry(
                line.fridge_id,
                line.venue_id,
                line.meal_id,
                line.target,
                line.sold_recently,
                line.sellable_tomorrow,
                line.held,
                line.expiring,
                line.to_deliver,
            )
            for line in chosen
        ]
        body = schemas.RefillPlan(days=days, items=items, next=next_cursor, **fresh(answer))
        return Response(body, headers=read_headers(answer))


def dated_plan(
    read: Any,
    now: Any,
    day: date,
    weeks: int,
    cover: float,
    min_position: int | None,
    limit: int,
    after: str | None,
) -> Response[schemas.RefillPlan]:
    answer = read.refill_plan.plan_for(now, day, weeks, cover, min_position=min_position)
    chosen, next_cursor = page(
        answer.value, lambda line: (line.fridge_id, line.meal_id), 2, after, limit
    )
    items = [
        schemas.RefillEntry(
            line.fridge_id,
            line.venue_id,
            line.meal_id,
            line.target,
            line.sold,
            line.sellable,
            line.held,
            line.expiring,
            line.to_deliver,
            date=line.day.isoformat(),
            sold_by_weekday=line.sold_by_weekday,
            expected_waste=line.expected_waste,
            delivered=line.delivered,
            short=line.short,
            over=line.over,
        )
        for line in chosen
    ]
    body = schemas.RefillPlan(
        days=7 * weeks,
        items=items,
        next=next_cursor,
        date=day.isoformat(),
        weeks=weeks,
        **fresh(answer),
    )
    return Response(body, headers=read_headers(answer))
