"""POST /webhook/{webhook_id}/test: one test event to one webhook, because someone asked.

Recorded as an upload's event is (ingest/db.py, born_fanned_out): the event, marked
`test`, with its one delivery, signed and sent like any other; no other webhook gets it,
and the webhook's filter does not apply.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from services.common.api.edge import parse_path_id, respond, validated
from services.common.api.shapes import SendTestEvent, SentTestEvent
from services.common.auth import current_user
from services.common.db import DB_POOL
from services.common.event_schemas import sample_payload
from services.common.messages import DeliveryBatch
from services.common.tracing import current_carrier
from services.common.web import (
    REQUEST_ID_HEADER,
    BadRequest,
    Conflict,
    NotFound,
    annotate,
    read_json_object,
)

from ..keys import SETTINGS
from ..relay.publishing import publish_now
from . import db
from .event_types import EventTypeForEvents
from .events import check_payload


def chosen_type(target: db.TargetWebhook, name: str | None) -> EventTypeForEvents:
    """The webhook's type of this name (its name or its name on the wire), or its first."""
    if name is None:
        return target.types[0]
    for event_type in target.types:
        if name in (event_type.name, event_type.event_name):
            return event_type
    names = ", ".join(repr(event_type.name) for event_type in target.types)
    raise BadRequest(f"event_type {name!r} is not one of the webhook's types ({names})")


async def send_test_event(request: web.Request) -> web.Response:
    app = request.app
    webhook_id = parse_path_id(request.match_info["webhook_id"], "webhook_id")
    given = (
        await read_json_object(request, app[SETTINGS].max_json_bytes) if request.body_exists else {}
    )
    asked = validated(SendTestEvent, given)
    # With API keys, another user's webhook is as good as missing: 404.
    target = await db.target_webhook(app[DB_POOL], webhook_id, current_user(request))
    if target is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    if target.disabled:
        raise Conflict(
            f"webhook {webhook_id} is disabled, so nothing would be sent; re-enable it first "
            f'with PATCH /webhook/{webhook_id} {{"disabled": false}}'
        )
    event_type = chosen_type(target, asked.event_type)
    if "payload" in asked.model_fields_set:
        payload = asked.payload
        check_payload(event_type.name, event_type.schema, payload)
    else:
        payload = sample_payload(event_type.schema)
    test = db.NewTestEvent(
        event_id=uuid.uuid4(),
        event_type=event_type,
        payload=payload,
        request_id=request.headers.get(REQUEST_ID_HEADER),
        created_at=datetime.now(UTC),
        delivery_id=uuid.uuid4(),
        webhook_id=webhook_id,
        trace_context=current_carrier(),
    )
    outbox_id = await db.record_test_event(app[DB_POOL], test)
    if outbox_id is None:
        raise NotFound(f"webhook {webhook_id} does not exist, or was disabled meanwhile")
    annotate(request, event_id=str(test.event_id), delivery_id=str(test.delivery_id))
    publish_now(app, outbox_id, DeliveryBatch(event_type.event_name, (test.event,)))
    answer = SentTestEvent(event_id=test.event_id, delivery_id=test.delivery_id)
    return respond(answer, "Test event accepted", status=202)
