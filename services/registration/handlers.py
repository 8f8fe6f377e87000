"""HTTP handlers of the registration service."""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from services.common.db import DB_POOL
from services.common.timefmt import api_time
from services.common.urlsafety import UnsafeDestination, check_registration_host
from services.common.web import BadRequest, NotFound, envelope, read_json_object

from . import db
from .keys import SETTINGS
from .validation import parse_registration

SECRET_BYTES = 32


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "user_id": row["user_id"],
        "url": row["url"],
        "event_type_id": str(row["event_type_id"]),
        "custom_headers": row["custom_headers"],
        "custom_payload": row["custom_payload"],
        "secret": row["secret"],
        "created_at": api_time(row["created_at"]),
        "updated_at": api_time(row["updated_at"]),
    }


async def list_event_types(request: web.Request) -> web.Response:
    name = request.query.get("name")
    rows = await db.list_event_types(request.app[DB_POOL], name)
    data = [
        {"id": str(row["id"]), "name": row["name"], "description": row["description"]}
        for row in rows
    ]
    return envelope(data)


async def register_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_json_object(request, settings.max_json_bytes)
    new = parse_registration(body)
    if not settings.allow_private_urls:
        parts = urlsplit(new.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            await check_registration_host(parts.hostname or "", port)
        except UnsafeDestination as exc:
            raise BadRequest(f"url is not allowed: {exc}") from None
    pool = request.app[DB_POOL]
    if not await db.event_type_exists(pool, new.event_type_id):
        raise NotFound(f"event_type_id {new.event_type_id} does not exist")
    row = await db.insert_webhook(pool, new, new_signing_secret())
    return envelope(webhook_view(row), "Register Webhook Successfully!")
