"""Assemble the dispatcher's application: health and metrics over HTTP, the consumer behind."""

from __future__ import annotations

from aiohttp import web

from services.common.auth import warn_if_open
from services.common.broker import broker_check, broker_ctx
from services.common.db import database_check, db_pool_ctx
from services.common.secrets import SecretBox, warn_without_key
from services.common.web import READINESS_CHECKS, base_app

from .client import http_session_ctx
from .consumer import dispatcher_ctx
from .dead_letters import DeadLetters
from .keys import SETTINGS
from .settings import DispatcherSettings

SERVICE = "dispatcher"


def create_app(settings: DispatcherSettings) -> web.Application:
    app = base_app(SERVICE)
    app[SETTINGS] = settings
    warn_without_key(app, SecretBox(settings.secrets_keys), SERVICE)
    warn_if_open(app, settings.auth_mode, SERVICE)
    # Every statement of the dispatcher looks its rows up by key: one plan each (db.py).
    app.cleanup_ctx.append(db_pool_ctx(settings.database_url, max_size=20, generic_plans=True))
    dead_letters = DeadLetters(settings)
    # The dead-letter queue is declared on connecting, before the consumer may use it.
    app.cleanup_ctx.append(broker_ctx(settings.amqp_url, dead_letters.on_connected))
    app.cleanup_ctx.append(dead_letters.ctx)
    app.cleanup_ctx.append(
        http_session_ctx(
            settings.allow_private_urls, settings.max_connections, settings.delivery_proxy_url
        )
    )
    app.cleanup_ctx.append(dispatcher_ctx)
    app[READINESS_CHECKS].extend([database_check(app), broker_check(app)])
    return app
