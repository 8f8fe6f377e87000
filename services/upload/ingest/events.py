"""POST /event: accept an event of any type for a user, durably, then have it fanned out.

The route is the upload service's, beside uploads: the service owns the outbox, its relay
and the fan-out worker, so an event takes the same path as an upload's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.common import events
from services.common.api.edge import respond, validated
from services.common.api.shapes import AcceptedEvent, EventRequest
from services.common.auth import Forbidden, parse_acting
from services.common.db import DB_POOL
from services.common.event_schemas import PayloadInvalid, payload_validator
from services.common.idempotency import (
    REPLAYED_HEADER,
    IdempotencyContention,
    parse_idempotency_key,
)
from services.common.system_events import SYSTEM_EVENT_TYPES
from services.common.tracing import current_carrier
from services.common.web import (
    REQUEST_ID_HEADER,
    Conflict,
    ServiceUnavailable,
    annotate,
    read_json_object,
)

from ..fanout.worker import OUTAGE_ERRORS
from ..keys import ACCEPTOR, FANOUT, OUTBOX_CLEANUP, SETTINGS
from ..relay.publishing import publish_now
from .event_types import EventTypeForEvents, event_type_of
from .handlers import UnprocessableContent

log = structlog.get_logger(__name__)

# What a statement raises for one row's data (a payload jsonb refuses, say), not for an
# outage: the events accepted beside that one are tried again, each alone.
ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def check_publishable(event_type: EventTypeForEvents, payload: dict[str, Any]) -> None:
    if event_type.id in SYSTEM_EVENT_TYPES:
        raise Forbidden(
            f"events of type {event_type.name!r} are recorded by the system only; "
            "create an event type of your own with POST /event_type"
        )
    if event_type.archived:
        raise Conflict(f"event type {event_type.name!r} is archived: it takes no new events")
    check_payload(event_type.name, event_type.schema, payload)


def check_payload(name: str, schema: dict[str, Any] | None, payload: dict[str, Any]) -> None:
    """422 naming the failing location unless `payload` satisfies the type's schema."""
    if schema is not None:
        try:
            payload_validator(schema).validate(payload)
        except PayloadInvalid as exc:
            raise UnprocessableContent(f"{exc} (the schema of event type {name!r})") from None


def parse_event(request: web.Request, body: dict[str, Any]) -> EventRequest:
    """The body; `user_id` may be left out when the API key says whose it is."""
    return parse_acting(request, lambda given: validated(EventRequest, {**given, **body}))


async def accept_together(
    pool: asyncpg.Pool, batch: list[events.NewEvent]
) -> list[events.AcceptedEvent | Exception]:
    """Events without an Idempotency-Key that arrived together, accepted in one statement
    (the ACCEPTOR's batch). If a row is refused for its data, each is tried alone, so
    only that event's request fails, with its own error."""
    try:
        return [*await events.accept_many(pool, batch)]
    except ROW_ERRORS:
        if len(batch) == 1:
            raise
    return [await accept_alone(pool, event) for event in batch]


async def accept_alone(
    pool: asyncpg.Pool, event: events.NewEvent
) -> events.AcceptedEvent | Exception:
    try:
        (accepted,) = await events.accept_many(pool, [event])
    except Exception as exc:  # raised in the event's own request
        return exc
    return accepted


async def accept(
    app: web.Application, new: events.NewEvent
) -> events.AcceptedEvent | events.IdempotencyConflict:
    """Durable when this returns. Without an Idempotency-Key, together with the events
    arriving at the same moment; with one, alone (it may replay or conflict)."""
    if new.idempotency_key is None:
        accepted = await app[ACCEPTOR](new)
        if isinstance(accepted, Exception):
            raise accepted
        return accepted
    try:
        async with app[DB_POOL].acquire() as conn:
            return await events.accept(conn, new)
    except IdempotencyContention as exc:
        raise ServiceUnavailable(str(exc), retry_after=1) from None


async def fan_out(
    request: web.Request, accepted: events.AcceptedEvent, new: events.NewEvent
) -> None:
    """Fan a just-accepted event out here if it has few webhooks, else ask the worker.

    Either way the event is durable already, with its fan-out message in the outbox: if
    this fails part-way, the relay publishes that message and the worker completes the
    fan-out (each delivery is made once, see docs/events.md). Done here, the request's
    line says so (`fanned_out_inline`, `deliveries`): no line of its own."""
    app = request.app
    assert accepted.outbox_id is not None
    try:
        created = await app[FANOUT].fan_out_inline(new)
    except OUTAGE_ERRORS as exc:
        log.warning("inline_fanout_deferred", event_id=str(new.id), error=repr(exc))
        created = None
    if created is not None:
        annotate(request, fanned_out_inline=True, deliveries=created)
        app[OUTBOX_CLEANUP].add(accepted.outbox_id)  # its fan-out message is not needed
    else:
        publish_now(app, accepted.outbox_id, accepted.fanout)


async def publish_event(request: web.Request) -> web.Response:
    app = request.app
    idempotency_key = parse_idempotency_key(request)
    parsed = parse_event(request, await read_json_object(request, app[SETTINGS].max_json_bytes))
    event_type = await event_type_of(app, parsed)
    check_publishable(event_type, parsed.payload)
    new = events.NewEvent(
        id=uuid.uuid4(),
        event_type_id=event_type.id,
        event_type=event_type.event_name,
        user_id=parsed.user_id,
        payload=parsed.payload,
        idempotency_key=idempotency_key,
        request_id=request.headers.get(REQUEST_ID_HEADER),
        created_at=datetime.now(UTC),
        trace_context=current_carrier(),
        ordering_key=parsed.ordering_key,
    )
    accepted = await accept(app, new)
    if isinstance(accepted, events.IdempotencyConflict):
        raise UnprocessableContent(accepted.message)
    annotate(request, event_id=str(accepted.id), event_type=accepted.event_type)
    if accepted.outbox_id is not None:
        await fan_out(request, accepted, new)
    answer = AcceptedEvent(
        event_id=accepted.id,
        event_type=accepted.event_type,
        user_id=accepted.user_id,
        created_at=accepted.created_at,
    )
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else None
    return respond(answer, "Event accepted", status=202, headers=headers)
