"""The composition root: builds the write side from settings, once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from application.catalogue import Catalogue
from application.clock import Clock, utc_now
from application.errors import StoreUnavailable
from application.fridge_writer import FridgeWriter
from application.orders import Ordering
from application.prices import PriceList
from application.stock import Stock
from application.store import EventStore
from ops.settings import Settings
from ops.stores import describe, event_store_env, schema_creation_lock


@dataclass
class WriteSide:
    """Everything that appends events, sharing one store and one writer per fridge."""

    settings: Settings
    store: EventStore
    writer: FridgeWriter
    catalogue: Catalogue
    prices: PriceList
    stock: Stock
    ordering: Ordering
    clock: Clock = field(default=utc_now)

    def close(self) -> None:
        self.store.close()


def open_event_store(settings: Settings, extra_env: dict[str, str] | None = None) -> EventStore:
    """Connect to the configured store, or raise StoreUnavailable naming the setting."""
    env = {**event_store_env(settings), **(extra_env or {})}
    try:
        with schema_creation_lock(settings):
            store = EventStore(env=env)
        store.position()  # prove the store answers now, not at the first customer's order
    except Exception as error:  # any driver error: the message matters, not its class
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise StoreUnavailable(f"{describe(settings)} is unavailable: {first_line}") from error
    return store


def build_write_side(
    settings: Settings, *, clock: Clock = utc_now, extra_env: dict[str, str] | None = None
) -> WriteSide:
    store = open_event_store(settings, extra_env)
    writer = FridgeWriter(store)
    catalogue = Catalogue(store)
    prices = PriceList(store)
    return WriteSide(
        settings=settings,
        store=store,
        writer=writer,
        catalogue=catalogue,
        prices=prices,
        stock=Stock(writer, catalogue, clock),
        ordering=Ordering(store, writer, catalogue, clock, prices),
        clock=clock,
    )
