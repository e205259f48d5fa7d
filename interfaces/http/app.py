"""The Litestar app: `create_app(side, settings)` wires controllers, auth, errors, metrics, docs.

`app_from_env` is the factory each server process calls: the composition root (ops/root.py)
builds its write side and opens the read models' databases from the environment; the app's
lifespan closes both at shutdown. An API process only reads the read models: their workers
run as processes of their own (`farmacy worker`), never here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from interfaces.http.auth import guard_in_place, jwt_auth
from interfaces.http.bodies import strict_body
from interfaces.http.catalogue import CatalogueRoutes
from interfaces.http.commands import CommandLane, Commands
from interfaces.http.contract import AmendedJson, AmendedYaml
from interfaces.http.errors import to_problem
from interfaces.http.feed import FeedRoutes
from interfaces.http.fridges import FridgeRoutes
from interfaces.http.fulfilment_metrics import unwatch_fulfilment, watch_fulfilment
from interfaces.http.menu_cache import MenuCache, VenueMenus
from interfaces.http.menus import KitchenRoutes, MenuRoutes
from interfaces.http.operations import CONFLICTS, LAG, HealthRoutes, MetricsRoutes
from interfaces.http.orders import CustomerRoutes, FridgeOrderRoutes, OrderRoutes
from interfaces.http.payments import PaymentRoutes
from interfaces.http.promotions import PromotionRoutes
from interfaces.http.reading import ReadSide
from interfaces.http.refunds import RefundRoutes
from interfaces.http.telemetry import request_telemetry
from ops import connections
from ops.logging import configure_logging
from ops.root import Root, WriteSide, trail_database
from ops.settings import Settings, SettingsError, webhook_secret_weakness


def create_app(side: WriteSide, settings: Settings, read: ReadSide | None = None) -> Litestar:
    """The API over `side` and the read models (opened from `settings` unless given); the
    app owns both from now on and closes them at shutdown."""
    if not settings.secret:
        raise SettingsError("FARMACY_SECRET is not set: the API cannot sign or check tokens")
    if webhook_secret_weakness(settings.payment_webhook_secret):
        settings = settings.for_payments()  # the demo's, or SettingsError naming the setting
    reading = read or ReadSide(Root(settings).api_read_models())
    connections.answer_promptly(side.store)  # a dry pool is a 503 now, not after ~22 s
    reading.head = side.store.position  # a min_position beyond it is the caller's mistake
    menus = VenueMenus(side, reading, MenuCache(promotions=side.prices))
    lane = CommandLane(settings.command_lane_size, settings.command_queue)
    commands = Commands(side, lane)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        CONFLICTS.writer = side.writer
        LAG.source = (side.store, reading)
        watch_fulfilment(side.store, *trail_database(settings, "fulfilment", reading.dbs))
        # menus whose venue has not changed answer from memory; changed ones asked for
        # lately are read again by the poll, all in one snapshot
        reading.watch_menus(menus=menus.cache, clock=side.clock)
        try:
            yield
        finally:
            LAG.source = None
            unwatch_fulfilment()
            lane.close()
            reading.close()
            side.close()

    app = Litestar(
        route_handlers=[
            OrderRoutes,
            CustomerRoutes,
            FridgeOrderRoutes,
            FridgeRoutes,
            MenuRoutes,
            KitchenRoutes,
            CatalogueRoutes,
            PaymentRoutes,
            PromotionRoutes,
            RefundRoutes,
            HealthRoutes,
            MetricsRoutes,
            FeedRoutes,
        ],
        dependencies={
            "side": Provide(lambda: side, use_cache=True, sync_to_thread=False),
            "read": Provide(lambda: reading, use_cache=True, sync_to_thread=False),
            "menus": Provide(lambda: menus, use_cache=True, sync_to_thread=False),
            "write": Provide(lambda: commands, use_cache=True, sync_to_thread=False),
        },
        state=State({"side": side, "settings": settings, "menus": menus}),
        lifespan=[lifespan],
        middleware=[request_telemetry],
        logging_config=None,  # the process's logging is ops/logging.py's: one format for all
        on_app_init=[jwt_auth(settings.secret).on_app_init],
        before_request=strict_body,
        exception_handlers={Exception: to_problem},
        openapi_config=OpenAPIConfig(
            title="Farmacy",
            version="1",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), AmendedJson(), AmendedYaml()],
        ),
    )
    return guard_in_place(app)


def app_from_env() -> Litestar:  # pragma: no cover - exercised by `farmacy api`
    """One server process: settings from the environment, its parts from the root."""
    configure_logging()
    # `farmacy api` checked its host already
    settings = Settings.from_env().for_signing().for_payments()
    root = Root(settings)
    return create_app(root.api_write_side(), settings, ReadSide(root.api_read_models()))
