"""Assemble the upload service's application (no I/O here)."""

from __future__ import annotations

from aiohttp import web

from services.common import partitions
from services.common.auth import install_api_guard
from services.common.batch import Batcher
from services.common.broker import broker_check, broker_ctx
from services.common.cache import TtlCache
from services.common.db import DB_POOL, database_check, db_pool_ctx
from services.common.messages import MAX_DELIVERIES_PER_MESSAGE
from services.common.web import READINESS_CHECKS, base_app

from .fanout.worker import fanout_ctx
from .ingest import db, event_types, events, handlers, webhook_tests
from .keys import ACCEPTOR, ANNOUNCER, EVENT_TYPES, FANOUT, KNOWN_WEBHOOKS, RECORDER, SETTINGS
from .relay.outbox_cleanup import outbox_cleanup_ctx
from .relay.outbox_relay import relay_ctx
from .relay.publishing import Announcer, announcer_ctx
from .settings import UploadSettings

SERVICE = "upload"
# How long a webhook that exists is trusted to exist before an upload looks again.
KNOWN_WEBHOOK_SECONDS = 5.0


def create_app(settings: UploadSettings) -> web.Application:
    app = base_app(SERVICE)
    app[SETTINGS] = settings
    app[KNOWN_WEBHOOKS] = TtlCache(KNOWN_WEBHOOK_SECONDS)
    app[ANNOUNCER] = Announcer()
    app[EVENT_TYPES] = event_types.new_event_type_cache()
    app[RECORDER] = Batcher(
        lambda uploads: db.record_uploads(app[DB_POOL], uploads),
        key=lambda upload: upload.upload_id,
        # One statement's deliveries are announced by one message.
        max_batch=MAX_DELIVERIES_PER_MESSAGE,
    )
    app[ACCEPTOR] = Batcher(
        lambda batch: events.accept_together(app[FANOUT], batch), key=lambda event: event.id
    )
    install_api_guard(app, settings, SERVICE)
    app.cleanup_ctx.append(db_pool_ctx(settings.database_url, max_size=20))
    app.cleanup_ctx.append(broker_ctx(settings.amqp_url))
    app.cleanup_ctx.append(outbox_cleanup_ctx)
    # After the outbox cleanup, so that it stops first: the rows it published go too.
    app.cleanup_ctx.append(announcer_ctx)
    app.cleanup_ctx.append(relay_ctx)
    app.cleanup_ctx.append(fanout_ctx)
    # The ingest side makes the days it writes into (events, deliveries) before they come.
    app.cleanup_ctx.append(partitions.maintenance_ctx)
    app[READINESS_CHECKS].extend([database_check(app), broker_check(app)])
    app.router.add_post("/upload_file/webhook_id/{webhook_id}", handlers.upload_file)
    app.router.add_post("/event", events.publish_event)
    app.router.add_post("/webhook/{webhook_id}/test", webhook_tests.send_test_event)
    return app
