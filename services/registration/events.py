"""Events as the management API reads them: GET /event/{event_id} with its deliveries, and
GET /event, the user's events newest first.

Publishing (POST /event) is the upload service's: it is the ingest side and owns the
outbox; this service is the read side, with the other views of deliveries.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from services.common import event_details
from services.common.api.edge import parse_path_id, query_of, respond, respond_page
from services.common.auth import may_see, parse_acting
from services.common.db import DB_POOL
from services.common.web import NotFound, annotate

from .pagination import EVENT_CURSOR, decode_cursor, page_of
from .queries import EventListQuery
from .views import Event, ListedEvent


async def get_event(request: web.Request) -> web.Response:
    event_id = parse_path_id(request.match_info["event_id"], "event_id")
    annotate(request, event_id=str(event_id))
    found = await event_details.get_event(request.app[DB_POOL], event_id)
    if found is None or not may_see(request, found.user_id):
        raise NotFound(f"event {event_id} does not exist")
    return respond(Event.model_validate(dataclasses.asdict(found)))


async def list_events(request: web.Request) -> web.Response:
    query = parse_acting(request, lambda given: query_of(request, EventListQuery, given))
    after = decode_cursor(query.cursor, EVENT_CURSOR)
    rows = await event_details.list_events(
        request.app[DB_POOL],
        event_details.EventQuery(
            user_id=query.user_id,
            event_type=query.event_type,
            since=query.since,
            until=query.until,
            after_created_at=None if after is None else after.created_at,
            after_id=None if after is None else after.id,
            limit=query.limit + 1,
        ),
    )
    page = page_of(rows, query.limit, EVENT_CURSOR)
    return respond_page(
        [ListedEvent.model_validate(dict(row)) for row in page.rows], page.next_cursor
    )
