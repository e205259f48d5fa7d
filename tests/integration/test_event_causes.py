"""On each store: the cause of a request reaches the events it records, each caller's own
when one append carries several callers' decisions, and `order_trail` reads an order's way
back with the store's positions. Events stored without a cause (as before causes were
recorded) load beside them."""

from __future__ import annotations

import threading
import time
from functools import partial

from application.causes import caused_by, reacting_to
from application.fridge_writer import FridgeWriter
from application.trail import order_trail
from domain.causes import METADATA, Cause, cause_of
from domain.fridge import Fridge
from ops.positions import stream_positions
from ops.root import WriteSide
from ops.settings import Settings
from tests.integration.world import make_world

ASKED = Cause("req-1", "corr-1", "req-1", "api")


def test_an_order_placed_and_opened_is_traced_with_its_causes_and_positions(
    side: WriteSide, store_settings: Settings
) -> None:
    world = make_world(side, soup_units=3, salad_units=0)  # recorded without a cause
    with caused_by(ASKED):
        placed = side.ordering.place("alice", "key-1", world.fridge_id, {world.soup: 1})
    fridge_stream = Fridge.create_id(world.fridge_id)
    reserved = list(side.store.events.get(fridge_stream))[-1]
    assert isinstance(reserved, Fridge.MealsReserved)
    # Before the process manager opens the order, its birth in the fridge is found.
    born = order_trail(side.store, placed.order_id, partial(stream_positions, side.store))
    assert [(s.type, s.cause) for s in born] == [("Fridge.MealsReserved", ASKED)]
    with caused_by(reacting_to(reserved, "fulfilment")):  # as the process manager does
        side.ordering.ensure_order(placed.order_id, world.fridge_id)

    steps = order_trail(side.store, placed.order_id, partial(stream_positions, side.store))

    assert [(s.stream, s.type) for s in steps] == [
        ("fridge", "Fridge.MealsReserved"),
        ("order", "Order.Placed"),
    ]
    ref = f"{reserved.originator_id}:{reserved.originator_version}"
    assert [s.cause for s in steps] == [ASKED, Cause("", "corr-1", ref, "fulfilment")]
    if store_settings.store != "kurrentdb":  # positions are the store's own
        assert [s.position for s in steps] == [placed.position, side.store.position()]
    # The fridge's events from before, stored without a cause, load beside the new ones.
    side.writer.forget(world.fridge_id)
    side.store.repository.cache = None
    fridge = side.catalogue.fridge(world.fridge_id)
    assert fridge.held(world.soup) == 1
    delivered = list(side.store.events.get(fridge_stream))[1]
    assert cause_of(delivered) is None
    stored = side.store.recorder.select_events(fridge_stream, lte=1)
    assert all(METADATA.encode() not in event.state for event in stored)


def test_callers_deciding_in_one_append_each_give_their_own_events_their_cause(
    side: WriteSide,
) -> None:
    world = make_world(side, soup_units=5, salad_units=0)
    writer = FridgeWriter(side.store)
    fridge_id = world.fridge_id
    now = side.clock()
    desk = writer._desk(fridge_id)
    desk.turn.acquire()  # a decision in progress: the next callers queue for one batch
    callers = []
    for n in (1, 2):

        def reserve(n: int = n) -> None:
            with caused_by(Cause(f"req-{n}", f"corr-{n}", f"req-{n}", "api")):
                writer.execute(
                    fridge_id,
                    lambda f: f.reserve(f"order-{n}", {world.soup: 1}, now, now),
                )

        callers.append(threading.Thread(target=reserve))
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 10
    while len(desk.queue) < 2:
        assert time.monotonic() < deadline, "the callers never queued"
        time.sleep(0.01)
    desk.turn.release()
    with desk.settled:
        desk.settled.notify_all()
    for caller in callers:
        caller.join(10)

    events = list(side.store.events.get(Fridge.create_id(fridge_id)))[-2:]
    assert writer.stats.batches == 1  # one append carried both decisions
    assert {e.order_id: cause_of(e).request_id for e in events} == {  # type: ignore[attr-defined,union-attr]
        "order-1": "req-1",
        "order-2": "req-2",
    }
