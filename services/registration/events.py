"""Events as the management API reads them: GET /event/{event_id} with its deliveries.

Publishing (POST /event) is the upload service's: it is the ingest side and owns the
outbox; this service is the read side, with the other views of deliveries.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from services.common import event_details
from services.common.api.edge import parse_path_id, respond
from services.common.auth import may_see
from services.common.db import DB_POOL
from services.common.web import NotFound, annotate

from .views import Event


async def get_event(request: web.Request) -> web.Response:
    event_id = parse_path_id(request.match_info["event_id"], "event_id")
    annotate(request, event_id=str(event_id))
    found = await event_details.get_event(request.app[DB_POOL], event_id)
    if found is None or not may_see(request, found.user_id):
        raise NotFound(f"event {event_id} does not exist")
    return respond(Event.model_validate(dataclasses.asdict(found)))
