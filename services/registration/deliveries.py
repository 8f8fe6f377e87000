"""Deliveries: list and inspect them, redeliver one, recover a webhook's failed ones."""

from __future__ import annotations

import uuid

import asyncpg
import structlog
from aiohttp import web

from services.common import deliveries as delivery_state
from services.common.api.edge import query_of, respond, respond_page, validated
from services.common.broker import BROKER
from services.common.db import DB_POOL
from services.common.web import ServiceUnavailable, read_json_object

from . import db
from .access import (
    current_request_id,
    delivery_id_of,
    delivery_not_found,
    refuse_disabled,
    require_broker,
    visible_to,
    webhook_id_of,
    webhook_not_found,
)
from .keys import RECOVERIES, SETTINGS
from .pagination import DELIVERY_CURSOR, decode_cursor, page_of
from .queries import DeliveryListQuery
from .redelivery import PublishFailed, publish_attempt
from .validation import RecoverRequest
from .views import Attempt, Delivery, DeliveryWithAttempts, Recovering

log = structlog.get_logger(__name__)


async def list_deliveries(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    query = query_of(request, DeliveryListQuery)
    after = decode_cursor(query.cursor, DELIVERY_CURSOR)
    pool = request.app[DB_POOL]
    if visible_to(request, await db.get_webhook(pool, webhook_id)) is None:
        raise webhook_not_found(webhook_id)
    rows = await db.list_deliveries(pool, webhook_id, query.status, after, query.limit)
    page = page_of(rows, query.limit, DELIVERY_CURSOR)
    return respond_page([Delivery.model_validate(dict(row)) for row in page.rows], page.next_cursor)


async def visible_delivery(request: web.Request, delivery_id: uuid.UUID) -> asyncpg.Record:
    """The delivery, or a 404 when it does not exist or is not the caller's to see."""
    row = visible_to(request, await db.get_delivery(request.app[DB_POOL], delivery_id))
    if row is None:
        raise delivery_not_found(delivery_id)
    return row


async def get_delivery(request: web.Request) -> web.Response:
    delivery_id = delivery_id_of(request)
    pool = request.app[DB_POOL]
    row = await visible_delivery(request, delivery_id)
    attempts = await db.list_attempts(pool, delivery_id, row["created_at"])
    delivery = DeliveryWithAttempts.model_validate(
        {**row, "attempts": [Attempt.model_validate(dict(a)) for a in attempts]}
    )
    return respond(delivery)


async def redeliver(request: web.Request) -> web.Response:
    delivery_id = delivery_id_of(request)
    pool = request.app[DB_POOL]
    found = await visible_delivery(request, delivery_id)
    if found["disabled"]:
        raise refuse_disabled(found["webhook_id"])
    await require_broker(request)
    row = await delivery_state.restart(pool, delivery_id)
    if row is None:
        raise delivery_not_found(delivery_id)
    try:
        await publish_attempt(
            request.app[BROKER],
            delivery_id,
            row["webhook_id"],
            row["attempt_count"] + 1,
            current_request_id(),
        )
    except PublishFailed as exc:
        # The delivery is pending and due: the dispatcher's sweeper sends it later anyway.
        log.warning("redeliver_publish_failed", delivery_id=str(delivery_id), error=str(exc))
        raise ServiceUnavailable("the message broker did not confirm, retry later") from None
    log.info("redeliver_requested", delivery_id=str(delivery_id), attempt=row["attempt_count"] + 1)
    return respond(Delivery.model_validate(dict(row)), "Redelivery requested", status=202)


async def recover_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = webhook_id_of(request)
    body = await read_json_object(request, settings.max_json_bytes)
    since = validated(RecoverRequest, body).since
    pool = request.app[DB_POOL]
    webhook = visible_to(request, await db.get_webhook(pool, webhook_id))
    if webhook is None:
        raise webhook_not_found(webhook_id)
    if webhook["disabled"]:
        raise refuse_disabled(webhook_id)
    await require_broker(request)
    count, until = await db.count_recoverable(pool, webhook_id, since)
    if count:
        request.app[RECOVERIES].start(webhook_id, since, until, current_request_id())
    log.info("recover_started", webhook_id=str(webhook_id), since=since.isoformat(), count=count)
    return respond(Recovering(recovering=count), "Recovery started", status=202)
