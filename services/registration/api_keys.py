"""API keys through the API (SPEC §20): list, create and revoke them, with an admin key only.

With AUTH_MODE=none keys are not checked, so these routes answer 403 there: an open API
that minted keys would hand out admin keys that start working the day keys are switched
on. The commands (`python -m services.registration list-api-keys`, ...) work in any mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from aiohttp import web

from services.common import api_keys as key_store
from services.common.api.edge import parse_path_id, query_of, respond, respond_page, validated
from services.common.auth import Forbidden, is_admin
from services.common.db import DB_POOL
from services.common.web import NotFound, read_json_object

from .api_key_shapes import ApiKey, ApiKeyCreate, ApiKeyListQuery, NewApiKey
from .keys import SETTINGS
from .pagination import API_KEY_CURSOR, decode_cursor, page_of

log = structlog.get_logger(__name__)
# A store's revocation by id: the key's row as listed, or None if no active key has the id.
Revoke = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[asyncpg.Record | None]]


def require_admin_key(request: web.Request, without_keys: str, what: str) -> None:
    """403 with AUTH_MODE=none (saying `without_keys`) and for a user key (it may not `what`)."""
    if request.app[SETTINGS].auth_mode != "api_key":
        raise Forbidden(without_keys)
    if not is_admin(request):
        raise Forbidden(f"only an admin API key may {what}; this key acts for one user")


def check_may_manage_keys(request: web.Request) -> None:
    require_admin_key(
        request,
        "API keys are managed through the API only with AUTH_MODE=api_key (here keys are "
        "not checked); use `python -m services.registration list-api-keys`, "
        "`create-api-key` or `revoke-api-key` instead",
        "manage API keys",
    )


async def list_api_keys(request: web.Request) -> web.Response:
    """GET /api_key: keys not revoked (expired ones too), newest first."""
    check_may_manage_keys(request)
    query = query_of(request, ApiKeyListQuery)
    after = decode_cursor(query.cursor, API_KEY_CURSOR)
    async with request.app[DB_POOL].acquire() as conn:
        rows = await key_store.list_keys(
            conn, None if after is None else (after.created_at, after.id), query.limit
        )
    page = page_of(rows, query.limit, API_KEY_CURSOR)
    return respond_page([ApiKey.model_validate(dict(row)) for row in page.rows], page.next_cursor)


async def create_api_key(request: web.Request) -> web.Response:
    """POST /api_key: the key is in the answer, and nowhere else, ever."""
    check_may_manage_keys(request)
    body = await read_json_object(request, request.app[SETTINGS].max_json_bytes)
    new = validated(ApiKeyCreate, body)
    async with request.app[DB_POOL].acquire() as conn:
        key, row = await key_store.create_key(conn, new.user_id, new.expires_in_seconds)
    log.info("api_key_created", api_key_id=str(row["id"]), user_id=row["user_id"])
    created = NewApiKey.model_validate(dict(row) | {"key": key})
    return respond(created, "API key created (shown only now; store it safely)", status=201)


async def answer_revocation(
    request: web.Request, id_name: str, revoke: Revoke, what: str, message: str
) -> web.Response:
    """Revoke the key whose id is the path's `id_name` (`api_key_id`, ...) with `revoke` and
    answer its row as listed, with `message`; a 404 naming `what` if no active key (of that
    kind) has the id. Logs `<id_name less _id>_revoked` (`api_key_revoked`) with the id."""
    key_id = parse_path_id(request.match_info[id_name], id_name)
    async with request.app[DB_POOL].acquire() as conn:
        row = await revoke(conn, key_id)
    if row is None:
        raise NotFound(f"{what} {key_id} does not exist or is already revoked")
    log.info(id_name.removesuffix("_id") + "_revoked", **{id_name: str(key_id)})
    return respond(ApiKey.model_validate(dict(row)), message)


async def revoke_api_key(request: web.Request) -> web.Response:
    """DELETE /api_key/{api_key_id}: every service refuses the key within a second."""
    check_may_manage_keys(request)
    return await answer_revocation(
        request, "api_key_id", key_store.revoke_by_id, "API key", "API key revoked"
    )
