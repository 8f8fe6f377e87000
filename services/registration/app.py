"""Assemble the registration service's application (no I/O here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.common.auth import install_api_guard
from services.common.broker import BROKER, broker_check, broker_ctx
from services.common.db import DB_POOL, database_check, db_pool_ctx
from services.common.secrets import SecretBox, warn_without_key
from services.common.web import READINESS_CHECKS, base_app

from . import (
    api_keys,
    deliveries,
    delivery_stats,
    event_types,
    events,
    portal,
    previews,
    webhooks,
)
from .console import add_console_routes
from .docs import add_docs_routes
from .event_types import EventTypes
from .keys import EVENT_TYPES, RECOVERIES, SECRET_BOX, SETTINGS
from .redelivery import Recoveries
from .settings import RegistrationSettings

SERVICE = "registration"
# `register` is a route of its own: GET /webhook/register must be a 405, not a lookup.
WEBHOOK = "/webhook/{webhook_id:(?!register$)[^/]+}"
DELIVERY = "/delivery/{delivery_id}"
EVENT_TYPE = "/event_type/{event_type_id}"
API_KEY = "/api_key/{api_key_id}"
PORTAL_SESSION = "/portal/session/{portal_session_id}"


async def recoveries_ctx(app: web.Application) -> AsyncIterator[None]:
    """Recover jobs; after the pool and the broker, so they stop first."""
    recoveries = Recoveries(app[DB_POOL], app[BROKER])
    app[RECOVERIES] = recoveries
    yield
    await recoveries.close()


async def event_types_ctx(app: web.Application) -> AsyncIterator[None]:
    app[EVENT_TYPES] = EventTypes(app[DB_POOL])
    yield


def create_app(settings: RegistrationSettings) -> web.Application:
    app = base_app(SERVICE)
    app[SETTINGS] = settings
    app[SECRET_BOX] = SecretBox(settings.secrets_keys)
    install_api_guard(app, settings, SERVICE)
    warn_without_key(app, app[SECRET_BOX], SERVICE)
    app.cleanup_ctx.append(db_pool_ctx(settings.database_url))
    app.cleanup_ctx.append(broker_ctx(settings.amqp_url))
    app.cleanup_ctx.append(recoveries_ctx)
    app.cleanup_ctx.append(event_types_ctx)
    app[READINESS_CHECKS].extend([database_check(app), broker_check(app)])
    router = app.router
    router.add_get("/event_type", event_types.list_event_types)
    router.add_post("/event_type", event_types.create_event_type)
    router.add_get(EVENT_TYPE, event_types.get_event_type)
    router.add_patch(EVENT_TYPE, event_types.update_event_type)
    router.add_get("/event", events.list_events)
    router.add_get("/event/{event_id}", events.get_event)
    router.add_post("/webhook/register", webhooks.register_webhook)
    router.add_get("/webhook", webhooks.list_webhooks)
    router.add_get(WEBHOOK, webhooks.get_webhook)
    router.add_patch(WEBHOOK, webhooks.update_webhook)
    router.add_delete(WEBHOOK, webhooks.delete_webhook)
    router.add_post(f"{WEBHOOK}/secret/rotate", webhooks.rotate_secret)
    router.add_get(f"{WEBHOOK}/deliveries", deliveries.list_deliveries)
    router.add_post(f"{WEBHOOK}/recover", deliveries.recover_webhook)
    router.add_get(DELIVERY, deliveries.get_delivery)
    router.add_post(f"{DELIVERY}/redeliver", deliveries.redeliver)
    # What the console needs beyond the management API (also open to any client).
    router.add_get(f"{WEBHOOK}/stats", delivery_stats.webhook_stats)
    router.add_get(f"{WEBHOOK}/sample_event", previews.sample_event)
    router.add_get(f"{DELIVERY}/body", previews.delivery_body)
    router.add_get("/api_key", api_keys.list_api_keys)
    router.add_post("/api_key", api_keys.create_api_key)
    router.add_delete(API_KEY, api_keys.revoke_api_key)
    router.add_post("/portal/session", portal.create_portal_session)
    router.add_delete(PORTAL_SESSION, portal.revoke_portal_session)
    add_docs_routes(router)
    add_console_routes(router)
    return app
