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
from services.common.tracing import annotate_span, current_carrier
from services.common.web import (
    REQUEST_ID_HEADER,
    Conflict,
    ServiceUnavailable,
    annotate,
    read_json_object,
)

from ..fanout import inline
from ..fanout.inline import AcceptedHere
from ..fanout.worker import OUTAGE_ERRORS, FanoutWorker, announced_deliveries
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
    worker: FanoutWorker, batch: list[events.NewEvent]
) -> list[AcceptedHere | Exception]:
    """Events without an Idempotency-Key that arrived together, accepted with their small
    fan-outs in one statement (the ACCEPTOR's batch). If a row is refused for its data,
    each is tried alone, so only that event's request fails, with its own error."""
    try:
        return [*await worker.accept_small(batch)]
    except ROW_ERRORS:
        if len(batch) == 1:
            raise
    return [await accept_alone(worker, event) for event in batch]


async def accept_alone(worker: FanoutWorker, event: events.NewEvent) -> AcceptedHere | Exception:
    try:
        (accepted,) = await worker.accept_small([event])
    except Exception as exc:  # raised in the event's own request
        return exc
    return accepted


async def accept(
    app: web.Application, new: events.NewEvent
) -> AcceptedHere | events.IdempotencyConflict:
    """Durable when this returns. Without an Idempotency-Key, together with the events
    arriving at the same moment, fanned out by the same statement when it has few
    webhooks; with one, alone (it may replay or conflict), and fanned out after."""
    if new.idempotency_key is None:
        accepted = await app[ACCEPTOR](new)
        if isinstance(accepted, Exception):
            raise accepted
        return accepted
    try:
        async with app[DB_POOL].acquire() as conn:
            keyed = await events.accept(conn, new)
    except IdempotencyContention as exc:
        raise ServiceUnavailable(str(exc), retry_after=1) from None
    if isinstance(keyed, events.IdempotencyConflict):
        return keyed
    if keyed.outbox_id is None:  # replayed: accepted (and fanned out) by an earlier request
        return AcceptedHere(keyed, None)
    return AcceptedHere(keyed, await fan_out_after(app, new))


async def fan_out_after(app: web.Application, new: events.NewEvent) -> inline.Announced | None:
    """Fan an event accepted alone out here if it has few webhooks: the outbox rows
    announcing its deliveries; None if the worker is to (many webhooks, or an outage).

    Either way the event is durable already, with its fan-out message in the outbox: if
    this fails part-way, the relay publishes that message and the worker completes the
    fan-out (each delivery is made once, see docs/events.md)."""
    try:
        return await app[FANOUT].fan_out_inline(new)
    except OUTAGE_ERRORS as exc:
        log.warning("inline_fanout_deferred", event_id=str(new.id), error=repr(exc))
        return None


def announce(request: web.Request, accepted: AcceptedHere) -> None:
    """Publish what the event's acceptance left to publish, in the background: the
    messages announcing its deliveries if it was fanned out here (the request's line
    says so: `fanned_out_inline`, `deliveries`), else its fan-out message. A message not
    published now is in the outbox, for the relay."""
    app = request.app
    event = accepted.event
    if accepted.announced is not None:
        created = announced_deliveries(accepted.announced)
        annotate(request, fanned_out_inline=True, deliveries=created)
        annotate_span({"deliveries": created})
        # The events accepted together share their messages: each is published once, in
        # the context of the first request to ask (each delivery keeps its own trace).
        for outbox_id, message in accepted.announced:
            publish_now(app, outbox_id, message)
        if event.outbox_id is not None:
            app[OUTBOX_CLEANUP].add(event.outbox_id)  # its fan-out message is not needed
    elif event.outbox_id is not None:
        publish_now(app, event.outbox_id, event.fanout)


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
    outcome = await accept(app, new)
    if isinstance(outcome, events.IdempotencyConflict):
        raise UnprocessableContent(outcome.message)
    accepted = outcome.event
    annotate(request, event_id=str(accepted.id), event_type=accepted.event_type)
    announce(request, outcome)
    answer = AcceptedEvent(
        event_id=accepted.id,
        event_type=accepted.event_type,
        user_id=accepted.user_id,
        created_at=accepted.created_at,
    )
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else None
    return respond(answer, "Event accepted", status=202, headers=headers)
