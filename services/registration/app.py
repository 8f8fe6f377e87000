"""Assemble the registration service's application (no I/O here)."""

from __future__ import annotations

from aiohttp import web

from services.common.db import database_check, db_pool_ctx
from services.common.web import READINESS_CHECKS, base_app

from . import handlers
from .keys import SETTINGS
from .settings import RegistrationSettings

SERVICE = "registration"


def create_app(settings: RegistrationSettings) -> web.Application:
    app = base_app(SERVICE)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(db_pool_ctx(settings.database_url))
    app[READINESS_CHECKS].append(database_check(app))
    app.router.add_get("/event_type", handlers.list_event_types)
    app.router.add_post("/webhook/register", handlers.register_webhook)
    return app
