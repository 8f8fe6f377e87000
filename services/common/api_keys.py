"""The `api_keys` table, its one writer: create, list and revoke keys, note when they were used.

A key's plaintext is shown once, when it is created; the table holds its sha256 hash and
the first characters (`prefix`, to tell keys apart). Revoking notifies every service in the
revoking transaction (services/common/revocation.py), so once it returns every service
refuses the key within a second.

A portal session (SPEC section 15) is a user key that expires, marked `portal`: its token
goes to a browser in a link (services/registration/portal.py), and it is revoked on its own
route, which revokes nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from .revocation import notify_revoked

KEY_PREFIX = "whk_"
# A portal session's token: a key too, told apart by its prefix wherever it turns up.
PORTAL_PREFIX = "whps_"
KEY_BYTES = 32
DISPLAY_PREFIX_CHARS = 10
# Ten years: far beyond any sensible key lifetime, far inside what a timestamp holds.
MAX_LIFETIME_SECONDS = 3650 * 86400
# What a listing shows of a key: never the key, never its hash.
LISTED_COLUMNS = "id, user_id, admin, portal, prefix, created_at, last_used_at, expires_at"


def new_api_key(prefix: str = KEY_PREFIX) -> str:
    random_part = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return prefix + random_part.rstrip("=")


def hash_api_key(key: str) -> str:
    """A key is 32 random bytes, so a fast hash cannot be brute-forced."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS]


async def create_key(
    conn: asyncpg.Connection, user_id: int | None, expires_in_seconds: int | None = None
) -> tuple[str, asyncpg.Record]:
    """A new key for the user (None: an admin key, for every user) and its listed row."""
    return await _insert(conn, new_api_key(), user_id, expires_in_seconds, portal=False)


async def create_portal_session(
    conn: asyncpg.Connection, user_id: int, expires_in_seconds: int
) -> tuple[str, asyncpg.Record]:
    """A portal session's token (it acts as the user's key until it expires) and its row."""
    token = new_api_key(PORTAL_PREFIX)
    return await _insert(conn, token, user_id, expires_in_seconds, portal=True)


async def _insert(
    conn: asyncpg.Connection,
    key: str,
    user_id: int | None,
    expires_in_seconds: int | None,
    *,
    portal: bool,
) -> tuple[str, asyncpg.Record]:
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_keys (user_id, admin, portal, key_hash, prefix, expires_at)
        VALUES ($1, $2, $3, $4, $5, now() + $6::bigint * interval '1 second')
        RETURNING {LISTED_COLUMNS}
        """,
        user_id,
        user_id is None,
        portal,
        hash_api_key(key),
        display_prefix(key),
        expires_in_seconds,
    )
    assert row is not None
    return key, row


async def list_keys(
    conn: asyncpg.Connection,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int | None = None,
) -> list[asyncpg.Record]:
    """Keys not revoked (expired ones too), newest first, after the (created_at, id) given;
    one row more than `limit` tells that another page follows."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT {LISTED_COLUMNS} FROM api_keys
        WHERE revoked_at IS NULL
          AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        after and after[0],
        after and after[1],
        None if limit is None else limit + 1,
    )
    return rows


async def revoke_by_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    """Revoke the key given in plaintext; its listed row, or None if no active key matches."""
    return await _revoke(conn, "key_hash = $1", hash_api_key(key))


async def revoke_by_id(conn: asyncpg.Connection, key_id: uuid.UUID) -> asyncpg.Record | None:
    """Revoke the key with this id; its listed row, or None if no active key has it."""
    return await _revoke(conn, "id = $1", key_id)


async def revoke_portal_session(
    conn: asyncpg.Connection, session_id: uuid.UUID
) -> asyncpg.Record | None:
    """Revoke the portal session with this id; its listed row, or None if no active portal
    session has it (an ordinary key's id included)."""
    return await _revoke(conn, "id = $1 AND portal", session_id)


async def _revoke(conn: asyncpg.Connection, match: str, value: object) -> asyncpg.Record | None:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE api_keys SET revoked_at = now() WHERE {match} AND revoked_at IS NULL "
            f"RETURNING key_hash, {LISTED_COLUMNS}",
            value,
        )
        if row is not None:
            # Delivered to the listening services when this transaction commits.
            await notify_revoked(conn, row["key_hash"])
    return row


async def record_uses(pool: asyncpg.Pool, uses: Sequence[tuple[uuid.UUID, datetime]]) -> None:
    """Each key's `last_used_at` moved forward to its time (never back: replicas race)."""
    await pool.execute(
        """
        UPDATE api_keys k SET last_used_at = u.used_at
        FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, used_at)
        WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)
        """,
        [key_id for key_id, _ in uses],
        [used_at for _, used_at in uses],
    )
