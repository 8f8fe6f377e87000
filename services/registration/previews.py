"""What a webhook is sent, shown before or after: a delivery's body as sent
(GET /delivery/{delivery_id}/body) and a test event for a webhook's type
(GET /webhook/{webhook_id}/sample_event: a body for POST /event, to try a type by hand)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import Field

from services.common.api.edge import respond
from services.common.api.shapes import Shape
from services.common.db import DB_POOL
from services.common.delivery_body import request_body
from services.common.event_schemas import sample_payload

from . import db
from .access import (
    delivery_id_of,
    delivery_not_found,
    visible_to,
    webhook_id_of,
    webhook_not_found,
)


class DeliveryBody(Shape):
    id: uuid.UUID
    body: str = Field(
        description="The JSON text of the request body, byte for byte as the next attempt "
        "sends it (and as the last one did, unless custom_payload changed since): the "
        "webhook's custom_payload plus `type`, `timestamp` and `data` from the stored event."
    )


class SampleEvent(Shape):
    """A body for POST /event that publishes a test event of the webhook's type for its user."""

    event_type_id: uuid.UUID
    event_type: str = Field(description="The type's name.")
    user_id: Annotated[int, Field(ge=1)]
    payload: dict[str, Any] = Field(
        description="Valid for the type's schema when it has one (best effort), else "
        '`{"test": true}`.'
    )


async def body_source(pool: asyncpg.Pool, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        """
        SELECT d.event_type, d.event_time, d.event_data, c.custom_payload, w.user_id
        FROM deliveries d
        JOIN webhook_registrations w ON w.id = d.webhook_id
        JOIN webhook_configurations c ON c.webhook_id = d.webhook_id
        WHERE d.id = $1 AND w.deleted_at IS NULL
        """,
        delivery_id,
    )
    return row


async def event_type_of(pool: asyncpg.Pool, event_type_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT id, name, schema FROM event_types WHERE id = $1", event_type_id
    )
    return row


async def delivery_body(request: web.Request) -> web.Response:
    delivery_id = delivery_id_of(request)
    row = visible_to(request, await body_source(request.app[DB_POOL], delivery_id))
    if row is None:
        raise delivery_not_found(delivery_id)
    body = request_body(
        row["custom_payload"], row["event_type"], row["event_time"], row["event_data"]
    )
    return respond(DeliveryBody(id=delivery_id, body=body.decode()))


async def sample_event(request: web.Request) -> web.Response:
    webhook_id = webhook_id_of(request)
    pool = request.app[DB_POOL]
    webhook = visible_to(request, await db.get_webhook(pool, webhook_id))
    if webhook is None:
        raise webhook_not_found(webhook_id)
    # The webhook references its type (a foreign key), and types are never deleted.
    event_type = await event_type_of(pool, webhook["event_type_id"])
    sample = SampleEvent(
        event_type_id=event_type["id"],
        event_type=event_type["name"],
        user_id=webhook["user_id"],
        payload=sample_payload(event_type["schema"]),
    )
    return respond(sample)
