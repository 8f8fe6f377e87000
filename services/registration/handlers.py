"""HTTP handlers of the registration service: event types and registering a webhook."""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from services.common.auth import Forbidden, current_user
from services.common.db import DB_POOL
from services.common.urlsafety import UnsafeDestination, check_registration_host
from services.common.web import BadRequest, NotFound, envelope, read_json_object

from . import db
from .keys import EVENT_TYPES, SECRET_BOX, SETTINGS
from .settings import RegistrationSettings
from .validation import parse_registration
from .views import registered_webhook_view

SECRET_BYTES = 32


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def check_url_destination(settings: RegistrationSettings, url: str) -> None:
    """Unless private URLs are allowed, refuse one that points inside (SPEC §6)."""
    if settings.allow_private_urls:
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await check_registration_host(parts.hostname or "", port)
    except UnsafeDestination as exc:
        raise BadRequest(f"url is not allowed: {exc}") from None


async def list_event_types(request: web.Request) -> web.Response:
    name = request.query.get("name")
    if name is not None and "\x00" in name:
        raise BadRequest("name must not contain the NUL character")
    types = await request.app[EVENT_TYPES].all()
    data = [
        {"id": str(t.id), "name": t.name, "description": t.description}
        for t in types
        if name is None or t.name == name
    ]
    return envelope(data)


async def register_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_json_object(request, settings.max_json_bytes)
    user = current_user(request)
    new = parse_registration(body, default_user_id=user)
    if user is not None and new.user_id != user:
        raise not_your_user(new.user_id)
    await check_url_destination(settings, new.url)
    pool = request.app[DB_POOL]
    if not await request.app[EVENT_TYPES].exists(new.event_type_id):
        raise NotFound(f"event_type_id {new.event_type_id} does not exist")
    secret = new_signing_secret()
    row = await db.insert_webhook(pool, new, request.app[SECRET_BOX].encrypt(secret))
    # The stored value may be encrypted; the caller gets the secret itself, this once.
    return envelope(
        registered_webhook_view({**row, "secret": secret}), "Register Webhook Successfully!"
    )


def not_your_user(user_id: int) -> Forbidden:
    return Forbidden(f"user_id {user_id} is not the API key's user: a key acts only for its own")
