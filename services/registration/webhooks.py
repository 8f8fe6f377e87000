"""Webhooks: register, get, list, change, delete, and rotate a webhook's signing secret."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from services.common import webhooks as webhook_rows
from services.common.api.edge import query_of, respond, respond_page, validated
from services.common.auth import parse_acting
from services.common.db import DB_POOL
from services.common.endpoint_auth import seal_columns
from services.common.signing_keys import SignatureScheme, new_signing_key
from services.common.urlsafety import UnsafeDestination, check_registration_host
from services.common.web import BadRequest, Conflict, NotFound, read_json_object

from . import db
from .access import (
    check_webhook_access,
    visible_to,
    webhook_id_of,
    webhook_not_found,
)
from .endpoint_auth_shapes import auth_fields, authorization_conflict, stored_columns
from .keys import EVENT_TYPES, SECRET_BOX, SETTINGS
from .pagination import WEBHOOK_CURSOR, decode_cursor, page_of
from .queries import WebhookListQuery
from .settings import RegistrationSettings
from .validation import WebhookRegistration, parse_patch
from .views import RegisteredWebhook, SecretRotation, UpdatedWebhook, Webhook

log = structlog.get_logger(__name__)


async def check_url_destination(
    settings: RegistrationSettings, url: str, field: str = "url"
) -> None:
    """Unless private URLs are allowed, refuse one that points inside (SPEC §6)."""
    if settings.allow_private_urls:
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        await check_registration_host(parts.hostname or "", port)
    except UnsafeDestination as exc:
        # A newcomer's first loopback receiver meets this: name the switch that allows it.
        raise BadRequest(
            f"{field} is not allowed: {exc} (ALLOW_PRIVATE_URLS=true allows private and "
            "loopback addresses, e.g. for a receiver on this machine)"
        ) from None


async def check_event_types(
    request: web.Request,
    type_ids: list[uuid.UUID],
    lone: bool = False,
    webhook_id: uuid.UUID | None = None,
) -> None:
    """Every type exists: else a 400 naming it (a `lone` event_type_id: 404, as the original
    design answers). An archived type takes no new webhooks (409), but the webhook
    `webhook_id` keeps one it subscribes to already."""
    subscribed: list[uuid.UUID] | None = None
    for index, type_id in enumerate(type_ids):
        event_type = await request.app[EVENT_TYPES].find(type_id)
        if event_type is None:
            if lone:
                raise NotFound(f"event_type_id {type_id} does not exist")
            raise BadRequest(f"event_type_ids[{index}]: event type {type_id} does not exist")
        if event_type.archived:
            if webhook_id is not None and subscribed is None:
                subscribed = await db.webhook_type_ids(request.app[DB_POOL], webhook_id)
            if type_id not in (subscribed or []):
                raise Conflict(
                    f"event type {event_type.name!r} is archived: it takes no new webhooks"
                )


async def check_token_url(settings: RegistrationSettings, auth: dict[str, Any] | None) -> None:
    """An OAuth2 token endpoint is checked as a webhook's url is."""
    if auth is not None and "token_url" in auth:
        await check_url_destination(settings, auth["token_url"], "auth.token_url")


async def register_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await read_json_object(request, settings.max_json_bytes)
    new = parse_acting(request, lambda given: validated(WebhookRegistration, {**given, **body}))
    await check_url_destination(settings, new.url)
    await check_token_url(settings, auth_fields(new.auth))
    pool = request.app[DB_POOL]
    await check_event_types(request, new.type_ids, lone=new.event_type_id is not None)
    conflict = authorization_conflict(new.custom_headers, new.auth)
    if conflict:
        raise BadRequest(conflict)
    box = request.app[SECRET_BOX]
    key = new_signing_key(new.signature_scheme)
    given = {name: getattr(new, name) for name in webhook_rows.ENDPOINT_AUTH_COLUMNS}
    endpoint_auth = seal_columns(stored_columns(given, webhook_rows.ENDPOINT_AUTH_COLUMNS), box)
    row = await webhook_rows.insert_webhook(pool, new, box.encrypt(key.stored), endpoint_auth)
    # The stored value may be encrypted; the caller gets the secret (or public key), this once.
    registered = RegisteredWebhook.model_validate({**row, "secret": key.shown})
    return respond(registered, "Register Webhook Successfully!")


async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    row = visible_to(request, await db.get_webhook(request.app[DB_POOL], webhook_id))
    if row is None:
        raise webhook_not_found(webhook_id)
    return respond(Webhook.model_validate(dict(row)))


async def list_webhooks(request: web.Request) -> web.Response:
    query = parse_acting(request, lambda given: query_of(request, WebhookListQuery, given))
    after = decode_cursor(query.cursor, WEBHOOK_CURSOR)
    rows = await db.list_webhooks(
        request.app[DB_POOL], query.user_id, query.event_type_id, after, query.limit
    )
    page = page_of(rows, query.limit, WEBHOOK_CURSOR)
    return respond_page([Webhook.model_validate(dict(row)) for row in page.rows], page.next_cursor)


async def update_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    webhook_id = webhook_id_of(request)
    update = parse_patch(await read_json_object(request, settings.max_json_bytes)).as_update()
    await check_webhook_access(request, webhook_id)
    if update.event_type_ids is not None:
        await check_event_types(request, update.event_type_ids, webhook_id=webhook_id)
    if update.url is not None:
        await check_url_destination(settings, update.url)
    auth = update.configuration.get("auth")
    conflict = authorization_conflict(update.custom_headers, auth)
    if conflict:
        raise BadRequest(conflict)
    await check_token_url(settings, auth)
    if update.configuration:
        sealed = seal_columns(update.configuration, request.app[SECRET_BOX])
        update = replace(update, configuration=sealed)
    row = await db.update_webhook(request.app[DB_POOL], webhook_id, update)
    if row is None:
        raise webhook_not_found(webhook_id)
    log.info("webhook_updated", webhook_id=str(webhook_id), disabled=update.disabled)
    if update.signature_scheme in (None, row["signature_scheme"]):
        return respond(Webhook.model_validate(dict(row)), "Webhook updated")
    rotated = await rotate(request, webhook_id, update.signature_scheme)
    return respond(UpdatedWebhook.model_validate(dict(row) | rotated), "Webhook updated")


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    await check_webhook_access(request, webhook_id)
    row = await db.delete_webhook(request.app[DB_POOL], webhook_id)
    if row is None:
        raise webhook_not_found(webhook_id)
    log.info("webhook_deleted", webhook_id=str(webhook_id))
    return respond(Webhook.model_validate(dict(row)), "Webhook deleted")


async def rotate(
    request: web.Request, webhook_id: uuid.UUID, scheme: SignatureScheme | None = None
) -> dict[str, Any]:
    """A new key (in `scheme`, else the webhook's own); the old one signs for the grace period.

    The old key keeps its own scheme, so a change of scheme is seamless too: during the
    grace period deliveries carry a `v1` and a `v1a` signature.
    """
    pool = request.app[DB_POOL]
    if scheme is None:
        row = await db.get_webhook(pool, webhook_id)
        if row is None:
            raise webhook_not_found(webhook_id)
        scheme = row["signature_scheme"]
    key = new_signing_key(scheme)
    grace = request.app[SETTINGS].secret_rotation_grace_seconds
    rotated = await webhook_rows.rotate_secret(
        pool, webhook_id, request.app[SECRET_BOX].encrypt(key.stored), grace, scheme
    )
    if rotated is None:
        raise webhook_not_found(webhook_id)
    log.info("secret_rotated", webhook_id=str(webhook_id), signature_scheme=scheme)
    return {
        "id": rotated["id"],
        "signature_scheme": rotated["signature_scheme"],
        "secret": key.shown,
        "previous_secret_expires_at": rotated["previous_secret_expires_at"],
    }


async def rotate_secret(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    await check_webhook_access(request, webhook_id)
    rotated = await rotate(request, webhook_id)
    return respond(SecretRotation.model_validate(rotated), "Secret rotated")
