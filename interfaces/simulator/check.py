"""The invariants, checked through the API once the system has gone quiet (`settle`).

Everything is read at one position (the store's head once nothing moves any more) with
`min_position`, so the read models answer about the same history:
- no negative availability, and no fridge holding more than it has fresh (oversold);
- every acknowledged order present, for its customer, with its fridge, total and a status
  consistent with what the simulator did (picked up, cancelled);
- every order's total equal to its lines, each at a price in force when it was placed
  (prices.py says what "in force" can mean to a client);
- per fridge and meal, the units held equal the open orders' units;
- venue and city menus equal the sum of their fridges' stock;
- every order final, or within its deadlines.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from interfaces.simulator import statuses
from interfaces.simulator.client import Answer, Api
from interfaces.simulator.figures import Figures
from interfaces.simulator.prices import PriceBook
from interfaces.simulator.traffic import PlacedOrder
from interfaces.simulator.world import World

DEADLINE_GRACE = timedelta(seconds=30)
"""How long past its payment deadline an unpaid order may stay placed (the expiry's tick)."""


@dataclass
class Findings:
    broken: list[tuple[str, str]] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    def fail(self, invariant: str, counterexample: str) -> None:
        self.broken.append((invariant, counterexample))

    def as_report(self) -> dict[str, list[str]]:
        """The report's `invariants`: each one broken with its counterexample, and what
        went unchecked."""
        broken = [f"{invariant}: {example}" for invariant, example in self.broken]
        return {"broken": broken, "unchecked": self.unchecked}

    @property
    def first(self) -> str | None:
        if not self.broken:
            return None
        invariant, counterexample = self.broken[0]
        return f"{invariant}: {counterexample}"


async def settle(api: Api, quiet: float = 1.5, bound: float = 90.0) -> int:
    """The store's head once it has not moved for `quiet` seconds and the fulfilment process
    has acted on everything up to it (where the API shows fulfilment's position): a flow
    that is only slow, a payment answer still to come, is waited for, not checked half-done."""
    deadline = time.monotonic() + bound
    head = await api.head()
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now_head = await api.head()
        if now_head != head:
            head, still_since = now_head, time.monotonic()
        elif time.monotonic() - still_since >= quiet and head is not None:
            acted = await api.fulfilment_position()
            if acted is None or acted >= head:
                return head
    raise CheckFailed(
        f"the store kept moving, fulfilment did not catch up, or /readyz did not answer, "
        f"for {bound:.0f} s"
    )


async def read_all(api: Api, path: str, head: int, role: str, subject: str) -> list[Any]:
    """Every item of a paged read at `head`."""
    items: list[Any] = []
    after = None
    while True:
        params: dict[str, Any] = {"min_position": head, "limit": 200}
        if after:
            params["after"] = after
        answer = await must(api.call("check", "GET", path, role, subject, params=params))
        items.extend(answer.body["items"])
        after = answer.body.get("next")
        if not after:
            return items


async def must(pending: Any) -> Answer:
    answer: Answer = await pending
    if not answer.ok:
        raise CheckFailed(f"a read for the check answered {answer.status}: {answer.body}")
    return answer


async def check(
    api: Api,
    world: World,
    acknowledged: dict[str, PlacedOrder],
    figures: Figures,
    prices: PriceBook | None = None,
) -> Findings:
    started = time.monotonic()
    head = await settle(api)
    found = Findings()
    stock = {}
    for fridge_id in sorted(world.fridges):
        answer = await must(
            api.call(
                "check",
                "GET",
                f"/fridges/{fridge_id}/stock",
                "operator",
                "operator",
                params={"min_position": head},
            )
        )
        stock[fridge_id] = {m["meal_id"]: m for m in answer.body["meals"]}
    figures.catch_up_seconds = time.monotonic() - started
    for fridge_id, meals in stock.items():
        for meal_id, m in sorted(meals.items()):
            if min(m["available"], m["on_hand"], m["held"], m["fresh"]) < 0:
                found.fail("negative availability", f"fridge {fridge_id} meal {meal_id}: {m}")
            elif m["held"] > m["fresh"]:
                found.fail(
                    "oversold", f"fridge {fridge_id} meal {meal_id} holds more than it has: {m}"
                )

    orders: dict[str, dict[str, Any]] = {}
    for customer in world.customers:
        for item in await read_all(api, "/customers/me/orders", head, "customer", customer):
            if item["fridge_id"] in world.fridges:
                orders[item["order_id"]] = {**item, "customer": customer}
    check_acknowledged(acknowledged, orders, found)
    if prices is None:
        found.unchecked.append("prices: the run kept no price history")
    else:
        check_prices(acknowledged, orders, prices, found)
    check_held(stock, orders, found, figures)
    await check_menus(api, world, head, stock, found)
    check_deadlines(orders, found)
    figures.final_statuses.update(Counter(o["status"] for o in orders.values()))
    return found


def check_acknowledged(
    acknowledged: dict[str, PlacedOrder], orders: dict[str, dict[str, Any]], found: Findings
) -> None:
    for order_id, placed in sorted(acknowledged.items()):
        seen = orders.get(order_id)
        if seen is None:
            found.fail("acknowledged order missing", f"order {order_id} of {placed.customer}")
            continue
        lines: dict[str, int] = {}
        for line in seen["lines"]:
            lines[line["meal_id"]] = lines.get(line["meal_id"], 0) + line["quantity"]
        status = seen["status"]
        wrong = []
        if seen["fridge_id"] != placed.fridge_id or lines != placed.lines:
            wrong.append(
                f"fridge/lines {seen['fridge_id']} {lines} != {placed.fridge_id} {placed.lines}"
            )
        if seen["total"] != placed.total:
            wrong.append(f"total {seen['total']} != {placed.total} acknowledged")
        if placed.picked_up and status not in statuses.AFTER_PICKUP and status in statuses.KNOWN:
            wrong.append(f"picked up but {status}")
        if placed.cancelled and status not in statuses.AFTER_CANCEL and status in statuses.KNOWN:
            wrong.append(f"cancelled but {status}")
        if not placed.picked_up and status == "picked_up":
            wrong.append("picked up, but nobody picked it up")
        if wrong:
            found.fail("order status inconsistent", f"order {order_id}: {'; '.join(wrong)}")


def check_prices(
    acknowledged: dict[str, PlacedOrder],
    orders: dict[str, dict[str, Any]],
    prices: PriceBook,
    found: Findings,
) -> None:
    """Each acknowledged order's total is its lines' sum, each line at a price its meal had
    while the order was in flight."""
    for order_id, placed in sorted(acknowledged.items()):
        seen = orders.get(order_id)
        if seen is None or not placed.sent:
            continue
        lines = seen["lines"]
        summed = sum((Decimal(line["unit_price"]) * line["quantity"] for line in lines), Decimal())
        if Decimal(seen["total"]) != summed:
            found.fail("prices", f"order {order_id} total {seen['total']}, its lines {summed}")
            continue
        for line in lines:
            allowed = prices.possible(line["meal_id"], placed.sent, placed.answered)
            if allowed is not None and Decimal(line["unit_price"]) not in map(Decimal, allowed):
                found.fail(
                    "prices",
                    f"order {order_id} paid {line['unit_price']} for {line['meal_id']}, "
                    f"in force while it was placed: {', '.join(sorted(allowed))}",
                )


def check_held(
    stock: dict[str, dict[str, dict[str, Any]]],
    orders: dict[str, dict[str, Any]],
    found: Findings,
    figures: Figures,
) -> None:
    expected: dict[str, Counter[str]] = {fridge_id: Counter() for fridge_id in stock}
    unknown: set[str] = set()
    for order in orders.values():
        holds = statuses.holds_meals(order["status"])
        if holds is None:
            unknown.add(order["fridge_id"])
            figures.unknown_statuses[order["status"]] += 1
        elif holds:
            for line in order["lines"]:
                expected[order["fridge_id"]][line["meal_id"]] += line["quantity"]
    for fridge_id, meals in sorted(stock.items()):
        if fridge_id in unknown:
            found.unchecked.append(f"held units of {fridge_id}: orders in statuses unknown here")
            continue
        for meal_id in sorted(set(meals) | set(expected[fridge_id])):
            held = meals.get(meal_id, {}).get("held", 0)
            if held != expected[fridge_id][meal_id]:
                found.fail(
                    "held units",
                    f"fridge {fridge_id} meal {meal_id} holds {held}, its open orders "
                    f"{expected[fridge_id][meal_id]}",
                )


async def check_menus(
    api: Api,
    world: World,
    head: int,
    stock: dict[str, dict[str, dict[str, Any]]],
    found: Findings,
) -> None:
    params = {"min_position": head}
    for venue_id in sorted(world.venues):
        want: Counter[str] = Counter()
        for fridge in world.venue_fridges(venue_id):
            want.update({m: s["available"] for m, s in stock[fridge.fridge_id].items()})
        answer = await must(
            api.call(
                "check", "GET", f"/venues/{venue_id}/menu", "operator", "operator", params=params
            )
        )
        got = Counter({i["meal_id"]: i["available"] for i in answer.body["items"]})
        negative(got, f"venue {venue_id} menu", found)
        if +got != +want:
            found.fail(
                "menu vs stock", f"venue {venue_id} menu {dict(+got)}, its fridges {dict(+want)}"
            )
    for city_id in sorted(world.cities):
        want = Counter()
        for fridge in world.fridges.values():
            if fridge.city_id == city_id:
                want.update({m: s["available"] for m, s in stock[fridge.fridge_id].items()})
        items = await read_all(api, f"/cities/{city_id}/menu", head, "operator", "operator")
        got = Counter({i["meal_id"]: i["available"] for i in items})
        negative(got, f"city {city_id} menu", found)
        if +got != +want:
            found.fail(
                "menu vs stock", f"city {city_id} menu {dict(+got)}, its fridges {dict(+want)}"
            )


def negative(available: Counter[str], where: str, found: Findings) -> None:
    for meal_id, units in sorted(available.items()):
        if units < 0:
            found.fail("negative availability", f"{where} meal {meal_id}: {units}")


def check_deadlines(orders: dict[str, dict[str, Any]], found: Findings) -> None:
    now = datetime.now(UTC)
    for order_id, order in sorted(orders.items()):
        due = datetime.fromisoformat(order["payment_due_by"])
        if order["status"] == statuses.PLACED and due + DEADLINE_GRACE < now:
            found.fail("deadline passed", f"order {order_id} still placed, payment was due {due}")


class CheckFailed(Exception):
    """The check could not read what it needs (the API did not answer as documented)."""
