"""What the registration handlers share: path ids, who may see what, the request id, errors."""

from __future__ import annotations

import uuid

import asyncpg
import structlog
from aiohttp import web

from services.common.api.edge import parse_path_id
from services.common.auth import current_user, may_see
from services.common.broker import BROKER, BrokerUnavailable
from services.common.db import DB_POOL
from services.common.web import Conflict, NotFound, ServiceUnavailable

from . import db


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
    # An admin key (or AUTH_MODE=none) sees every webhook: no lookup of the owner.
    if current_user(request) is not None and not may_see(
        request, await db.webhook_owner(request.app[DB_POOL], webhook_id)
    ):
        raise webhook_not_found(webhook_id)


def visible_to(request: web.Request, row: asyncpg.Record | None) -> asyncpg.Record | None:
    """The row if the caller may see it (its `user_id` is theirs, or auth is off)."""
    return row if row is not None and may_see(request, row["user_id"]) else None


async def require_broker(request: web.Request) -> None:
    try:
        await request.app[BROKER].check()
    except BrokerUnavailable:
        raise ServiceUnavailable("the message broker is unavailable, retry later") from None
