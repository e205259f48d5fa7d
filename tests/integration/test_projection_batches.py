"""A batch applied at once ends as its events applied one by one; a view that ignores events
still moves past them (on SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import Notification
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.order import OrderLine
from ops.root import WriteSide
from projections.database import Database, Tx
from projections.order_rows import OrderRows
from projections.orders import Orders
from projections.projection import Projection, View, utc_iso
from projections.reservations import ReservationRows, Reservations
from tests.conftest import unique
from tests.integration.projection_fixtures import OpenModels, models
from tests.integration.projection_world import (
    run_workload,
    runner_for,
    seed_world,
    table_contents,
)
from tests.integration.world import make_world, place_and_open

__all__ = ["models"]


@pytest.mark.parametrize("name", ["orders", "reservations"])
def test_orders_reserved_placed_and_moved_on_in_one_batch_end_as_one_by_one(
    side: WriteSide, models: OpenModels, name: str
) -> None:
    world = make_world(side, soup_units=10, salad_units=5)
    db = models(name)
    one_by_one = runner_for(side, db, name, generation=1, batch_size=1)
    at_once = runner_for(side, db, name, generation=2, batch_size=10_000)
    earlier = place_and_open(side, "ann", "k0", world.fridge_id, {world.soup: 1})
    one_by_one.catch_up()
    at_once.catch_up()  # `earlier` has its rows from a batch of its own

    side.ordering.authorise_payment(earlier.order_id, "pay-0")
    side.ordering.pick_up(world.fridge_id, earlier.order_id)
    picked = place_and_open(side, "bob", "k1", world.fridge_id, {world.soup: 2})
    side.ordering.authorise_payment(picked.order_id, "pay-1")
    side.ordering.pick_up(world.fridge_id, picked.order_id)
    cancelled = side.ordering.place("cy", "k2", world.fridge_id, {world.salad: 1})
    side.ordering.cancel(cancelled.order_id, fridge_id=world.fridge_id)
    failed = place_and_open(side, "dee", "k3", world.fridge_id, {world.salad: 1})
    side.ordering.fail_payment(failed.order_id, "card declined")
    reserved_only = side.ordering.place("eve", "k4", world.fridge_id, {world.soup: 1})
    head = at_once.head()  # on PostgreSQL, also moves the safe head up to here
    assert head == side.store.position()

    at_once.step()
    assert at_once.position == head, "the rest of the store was not one batch"
    one_by_one.catch_up()

    batched, single = table_contents(db, name, 2), table_contents(db, name, 1)
    assert batched == single
    rows = {row[:2] if name == "reservations" else row[0]: row for row in batched[name]}
    if name == "orders":
        assert rows[picked.order_id][5] == "picked_up"
        assert rows[earlier.order_id][5] == "picked_up"
        assert rows[cancelled.order_id][5] == "cancelled"
        assert rows[failed.order_id][5] == "payment_failed"
        assert rows[reserved_only.order_id][5] == "placed"
        steps = [row[2] for row in batched["history"] if row[0] == picked.order_id]
        assert sorted(steps) == sorted(["placed", "paid", "ready_for_pickup", "picked_up"])
    else:
        assert rows[(world.fridge_id, picked.order_id)][2] == "picked_up"
        assert rows[(world.fridge_id, cancelled.order_id)][2].startswith("released:")
        assert rows[(world.fridge_id, reserved_only.order_id)][2] == "held"


@pytest.mark.parametrize("name", ["orders", "reservations"])
def test_a_batch_rolled_back_and_applied_again_leaves_nothing_kept_behind(
    side: WriteSide, models: OpenModels, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The batch is kept in memory, fails as it is written, and is applied again one by one:
    had memory kept anything of the first attempt (a fridge's names, say), the second would
    take it as written and never write it."""
    rng = random.Random(5)
    world = seed_world(side, rng)
    run_workload(side, world, rng, steps=80)
    db = models(name)
    runner = runner_for(side, db, name, batch_size=10_000)
    flush = runner.projection.flush
    failed: list[Tx] = []

    def fails_once(tx: Tx) -> None:
        if not failed:
            failed.append(tx)
            raise ValueError("the first write fails")
        flush(tx)

    monkeypatch.setattr(runner.projection, "flush", fails_once)
    runner.catch_up()
    assert failed and runner.position == runner.head()

    runner_for(side, db, name, generation=2, batch_size=10_000).catch_up()
    assert table_contents(db, name, 1) == table_contents(db, name, 2)


def test_a_view_ignoring_most_events_moves_its_checkpoint_to_the_head(
    side: WriteSide, models: OpenModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reservations ignore the catalogue and the orders' own events: they are not decoded,
    yet the checkpoint moves past them, and records when the newest of them happened."""
    world = make_world(side)
    place_and_open(side, "gus", "k1", world.fridge_id, {world.soup: 1})
    for n in range(5):  # events the reservations never look at, the newest of the store
        side.catalogue.register_meal(unique(f"wrap{n}"), "Wrap", "5.00", "EUR")
    head = side.store.position() or 0
    every = _every(side)
    batch_size = 3
    lasts = {page[-1].id for page in _pages(every, batch_size)}
    wanted = {n.id for n in every if Reservations().wants(n.topic)}
    assert len(wanted) < len(every) // 2, "the view should ignore most of these events"

    decoded: list[int] = []
    decode = side.store.mapper.to_domain_event

    def spy(notification: Any) -> Any:
        decoded.append(notification.id)
        return decode(notification)

    monkeypatch.setattr(side.store.mapper, "to_domain_event", spy)
    db = models("reservations")
    runner = runner_for(side, db, "reservations", batch_size=batch_size)
    runner.catch_up()

    assert runner.position == head
    with db.snapshot() as tx:
        position, event_at = tx.one(
            "SELECT position, event_at FROM projection_checkpoints WHERE name = ?",
            ("reservations",),
        ) or (None, None)
    assert position == head
    newest: Any = decode(every[-1])
    assert event_at == utc_iso(newest.timestamp)
    assert set(decoded) == wanted | lasts
    assert table_contents(db, "reservations")["reservations"], "the wanted events were applied"


def _pages(notifications: list[Notification], size: int) -> list[list[Notification]]:
    return [notifications[start : start + size] for start in range(0, len(notifications), size)]


def _every(side: WriteSide) -> list[Notification]:
    """Every notification in the store, read in pages as the runner reads them."""
    found: list[Notification] = []
    while page := side.store.recorder.select_notifications(
        start=found[-1].id if found else None, limit=100, inclusive_of_start=False
    ):
        found.extend(page)
    return found


# ---- any calls on the views, with or without the events that make them ---------------------

T0 = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
KEYS = ("o1", "o2", "o3")
Call = tuple[str, str, int]
ORDER_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["born", "moved", "installed"]), st.sampled_from(KEYS), st.integers(0, 4)
    ),
    max_size=10,
)
RESERVATION_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["held", "status", "missing"]), st.sampled_from(KEYS), st.integers(0, 4)
    ),
    max_size=10,
)
SOME_TIMES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def order_call(rows: View, tx: Tx, call: Call) -> None:
    assert isinstance(rows, OrderRows)
    kind, key, n = call
    at = T0 + timedelta(minutes=n)
    if kind == "born":
        line = OrderLine(meal_id=f"meal-{n}", quantity=n + 1, unit_price=Decimal("2.50"))
        who = (key, f"customer-{n}", f"fridge-{n}", "venue", "city")
        rows.born(tx, who, [line], Decimal(n), "EUR", at, at + timedelta(hours=1), at)
    elif kind == "moved":
        rows.moved(tx, key, n, f"status-{n}", at, f"why-{n}" if n % 2 else None)
    else:
        rows.fridge_installed(tx, f"stream-{key}", f"fridge-{n}", f"venue-{n}", "city")


def reservation_call(rows: View, tx: Tx, call: Call) -> None:
    assert isinstance(rows, ReservationRows)
    kind, key, n = call
    at = T0 + timedelta(minutes=n)
    if kind == "held":
        rows.held(tx, "fridge", key, {f"meal-{n}": n + 1}, at + timedelta(hours=1), at)
    elif kind == "status":
        rows.set_status(tx, "fridge", key, f"status-{n}", at)
    else:
        rows.missing(tx, "fridge", [key, KEYS[n % len(KEYS)]])


def one_by_one_and_at_once(
    db: Database,
    model: type[Projection],
    view: Callable[[dict[str, str]], View],
    call: Callable[[View, Tx, Call], None],
    batches: list[list[Call]],
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The tables after `batches` of calls, written after each call (generation 1: each
    call's SQL on its own, as the views wrote every event before they kept batches) and
    written at the end of each batch (generation 2)."""
    found = []
    for generation, each in ((1, True), (2, False)):
        model_view = model(generation)
        rows = view(model_view.t)
        with db.transaction() as tx:
            model_view.drop_tables(tx)
            model_view.create_tables(tx)
        for batch in batches:
            with db.transaction() as tx:
                for one in batch:
                    call(rows, tx, one)
                    if each:
                        rows.flush(tx)
                rows.flush(tx)
        with db.snapshot() as tx:
            found.append(
                {
                    short: sorted(tx.rows(f"SELECT * FROM {model_view.t[short]}"), key=repr)
                    for short in model.tables
                }
            )
    return found[0], found[1]


@SOME_TIMES
@given(earlier=ORDER_CALLS, batch=ORDER_CALLS)
def test_order_rows_written_at_the_end_of_a_batch_end_as_written_call_by_call(
    models: OpenModels, earlier: list[Call], batch: list[Call]
) -> None:
    """Births and moves in any order, before or after a birth, of rows an earlier batch wrote
    or not: what SQL written call by call would leave."""
    single, batched = one_by_one_and_at_once(
        models("orders"), Orders, OrderRows, order_call, [earlier, batch]
    )
    assert batched == single


@SOME_TIMES
@given(earlier=RESERVATION_CALLS, batch=RESERVATION_CALLS)
def test_reservation_rows_written_at_the_end_of_a_batch_end_as_written_call_by_call(
    models: OpenModels, earlier: list[Call], batch: list[Call]
) -> None:
    single, batched = one_by_one_and_at_once(
        models("reservations"), Reservations, ReservationRows, reservation_call, [earlier, batch]
    )
    assert batched == single
