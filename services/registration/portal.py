"""Portal links (SPEC section 15): an admin key asks for a link that signs a browser in to the
console as one user for a while, and may revoke it.

A link's session is a user key that expires, marked `portal`, written like every key by
services/common/api_keys.py; services/common/auth.py refuses it (401) once it expired or was
revoked, saying which. With AUTH_MODE=none keys are not checked, so no link could be
refused: these routes answer 403 there.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.common import api_keys as key_store
from services.common.api.edge import respond, validated
from services.common.db import DB_POOL
from services.common.web import read_json_object

from .api_keys import answer_revocation, require_admin_key
from .keys import SETTINGS
from .portal_shapes import TOKEN_FRAGMENT, PortalSession, PortalSessionCreate

log = structlog.get_logger(__name__)


def check_may_manage_links(request: web.Request) -> None:
    require_admin_key(
        request,
        "portal links need AUTH_MODE=api_key: here keys are not checked, so a link could not "
        "sign anyone in as one user, nor be refused once it expired or was revoked",
        "create or revoke portal links",
    )


async def create_portal_session(request: web.Request) -> web.Response:
    """POST /portal/session: the link is in the answer, and nowhere else, ever."""
    check_may_manage_links(request)
    settings = request.app[SETTINGS]
    new = validated(PortalSessionCreate, await read_json_object(request, settings.max_json_bytes))
    async with request.app[DB_POOL].acquire() as conn:
        token, row = await key_store.create_portal_session(
            conn, new.user_id, new.expires_in_seconds
        )
    log.info("portal_session_created", portal_session_id=str(row["id"]), user_id=new.user_id)
    session = PortalSession.model_validate(
        dict(row) | {"url": settings.public_url + TOKEN_FRAGMENT + token}
    )
    return respond(
        session, "portal link created (shown only now; send the browser there)", status=201
    )


async def revoke_portal_session(request: web.Request) -> web.Response:
    """DELETE /portal/session/{portal_session_id}: every service refuses the link within 1 s."""
    check_may_manage_links(request)
    return await answer_revocation(
        request,
        "portal_session_id",
        key_store.revoke_portal_session,
        "portal session",
        "portal link revoked",
    )
