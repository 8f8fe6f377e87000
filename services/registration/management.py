"""HTTP handlers of the management API: see, change, delete webhooks; inspect and replay deliveries.

Every route answers 404 for a deleted webhook and for its deliveries (and, with API keys,
for another user's), and 400 for an id that is not a UUID. Input is validated before
anything is looked up or written.
"""

from __future__ import annotations

import uuid

import asyncpg
import structlog
from aiohttp import web

from services.common import deliveries
from services.common.auth import current_user
from services.common.broker import BROKER, BrokerUnavailable
from services.common.db import DB_POOL
from services.common.timefmt import api_time
from services.common.web import ApiError, NotFound, ServiceUnavailable, envelope, read_json_object

from . import db
from .handlers import check_url_destination, new_signing_secret, not_your_user
from .keys import RECOVERIES, SECRET_BOX, SETTINGS
from .pagination import decode_cursor, page_of, parse_limit
from .redelivery import PublishFailed, publish_attempt
from .validation import parse_path_id, parse_query_user_id, parse_since, parse_status, parse_update
from .views import attempt_view, delivery_view, webhook_view

log = structlog.get_logger(__name__)

WEBHOOK_CURSOR = "w"
DELIVERY_CURSOR = "d"


class Conflict(ApiError):
    status = 409


def webhook_id_of(request: web.Request) -> uuid.UUID:
    return parse_path_id(request.match_info["webhook_id"], "webhook_id")


def delivery_id_of(request: web.Request) -> uuid.UUID:
    return parse_path_id(request.match_info["delivery_id"], "delivery_id")


def webhook_not_found(webhook_id: uuid.UUID) -> NotFound:
    return NotFound(f"webhook {webhook_id} does not exist")


def delivery_not_found(delivery_id: uuid.UUID) -> NotFound:
    return NotFound(f"delivery {delivery_id} does not exist")


def refuse_disabled(webhook_id: uuid.UUID) -> Conflict:
    return Conflict(
        f"webhook {webhook_id} is disabled, so nothing would be sent; re-enable it first "
        f'with PATCH /webhook/{webhook_id} {{"disabled": false}}'
    )


def current_request_id() -> str | None:
    """The id the request middleware bound (the gateway's, the client's, or a new one)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return None if value is None else str(value)


async def check_webhook_access(request: web.Request, webhook_id: uuid.UUID) -> None:
    """With API keys, another user's webhook is as good as missing: 404, existence not leaked."""
    user = current_user(request)
    if user is not None and await db.webhook_owner(request.app[DB_POOL], webhook_id) != user:
        raise webhook_not_found(webhook_id)


def visible_to(request: web.Request, row: asyncpg.Record | None) -> asyncpg.Record | None:
    """The row if the caller may see it (its `user_id` is theirs, or auth is off)."""
    user = current_user(request)
    if row is None or (user is not None and row["user_id"] != user):
        return None
    return row


async def require_broker(request: web.Request) -> None:
    try:
        await request.app[BROKER].check()
    except BrokerUnavailable:
        raise ServiceUnavailable("the message broker is unavailable, retry later") from None


# --- webhooks -----------------------------------------------------------------------------------


async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    row = visible_to(request, await db.get_webhook(request.app[DB_POOL], webhook_id))
    if row is None:
        raise webhook_not_found(webhook_id)
    return envelope(webhook_view(row))


async def list_webhooks(request: web.Request) -> web.Response:
    user = current_user(request)
    user_id = parse_query_user_id(request.query.get("user_id"), default=user)
    if user is not None and user_id != user:
        raise not_your_user(user_id)
    limit = parse_limit(request.query.get("limit"))
    after = decode_cursor(request.query.get("cursor"), WEBHOOK_CURSOR)
    rows = await db.list_webhooks(request.app[DB_POOL], user_id, after, limit)
    page = page_of(rows, limit, WEBHOOK_CURSOR)
    return envelope(
        [webhook_view(row) for row in page.rows], extra={"next_cursor": page.next_cursor}
    )


async def update_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = webhook_id_of(request)
    update = parse_update(await read_json_object(request, settings.max_json_bytes))
    await check_webhook_access(request, webhook_id)
    if update.url is not None:
        await check_url_destination(settings, update.url)
    row = await db.update_webhook(request.app[DB_POOL], webhook_id, update)
    if row is None:
        raise webhook_not_found(webhook_id)
    log.info("webhook_updated", webhook_id=str(webhook_id), disabled=update.disabled)
    return envelope(webhook_view(row), "Webhook updated")


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    await check_webhook_access(request, webhook_id)
    row = await db.delete_webhook(request.app[DB_POOL], webhook_id)
    if row is None:
        raise webhook_not_found(webhook_id)
    log.info("webhook_deleted", webhook_id=str(webhook_id))
    return envelope(webhook_view(row), "Webhook deleted")


async def rotate_secret(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = webhook_id_of(request)
    await check_webhook_access(request, webhook_id)
    secret = new_signing_secret()
    row = await db.rotate_secret(
        request.app[DB_POOL],
        webhook_id,
        request.app[SECRET_BOX].encrypt(secret),
        settings.secret_rotation_grace_seconds,
    )
    if row is None:
        raise webhook_not_found(webhook_id)
    log.info("secret_rotated", webhook_id=str(webhook_id))
    data = {
        "id": str(row["id"]),
        "secret": secret,
        "previous_secret_expires_at": api_time(row["previous_secret_expires_at"]),
    }
    return envelope(data, "Secret rotated")


async def recover_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = webhook_id_of(request)
    since = parse_since(await read_json_object(request, settings.max_json_bytes))
    pool = request.app[DB_POOL]
    webhook = visible_to(request, await db.get_webhook(pool, webhook_id))
    if webhook is None:
        raise webhook_not_found(webhook_id)
    if webhook["disabled"]:
        raise refuse_disabled(webhook_id)
    await require_broker(request)
    count, until = await deliveries.count_recoverable(pool, webhook_id, since)
    if count:
        request.app[RECOVERIES].start(webhook_id, since, until, current_request_id())
    log.info("recover_started", webhook_id=str(webhook_id), since=since.isoformat(), count=count)
    return envelope({"recovering": count}, "Recovery started", status=202)


# --- deliveries ---------------------------------------------------------------------------------


async def list_deliveries(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    status = parse_status(request.query.get("status"))
    limit = parse_limit(request.query.get("limit"))
    after = decode_cursor(request.query.get("cursor"), DELIVERY_CURSOR)
    pool = request.app[DB_POOL]
    if visible_to(request, await db.get_webhook(pool, webhook_id)) is None:
        raise webhook_not_found(webhook_id)
    rows = await db.list_deliveries(pool, webhook_id, status, after, limit)
    page = page_of(rows, limit, DELIVERY_CURSOR)
    return envelope(
        [delivery_view(row) for row in page.rows], extra={"next_cursor": page.next_cursor}
    )


async def get_delivery(request: web.Request) -> web.Response:
    delivery_id = delivery_id_of(request)
    pool = request.app[DB_POOL]
    row = visible_to(request, await db.get_delivery(pool, delivery_id))
    if row is None:
        raise delivery_not_found(delivery_id)
    attempts = await db.list_attempts(pool, delivery_id)
    return envelope({**delivery_view(row), "attempts": [attempt_view(a) for a in attempts]})


async def redeliver(request: web.Request) -> web.Response:
    delivery_id = delivery_id_of(request)
    pool = request.app[DB_POOL]
    found = visible_to(request, await db.get_delivery(pool, delivery_id))
    if found is None:
        raise delivery_not_found(delivery_id)
    if found["disabled"]:
        raise refuse_disabled(found["webhook_id"])
    await require_broker(request)
    row = await deliveries.restart(pool, delivery_id)
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
    return envelope(delivery_view(row), "Redelivery requested", status=202)
