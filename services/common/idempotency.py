"""Idempotency-Key, as uploads and events share it: the header, its window, and the claim."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import asyncpg
from aiohttp import web

from .web import BadRequest, header_once

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Tells a client that this answer is the first request's, as Stripe does.
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY_CHARS = 255
# How long an Idempotency-Key answers with its first request (Stripe's 24 hours).
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
# Rounds of "release an expired key, insert, else read the holder" before giving up;
# a second round is needed only when a key expires or its holder is pruned meanwhile.
IDEMPOTENCY_ROUNDS = 3

T = TypeVar("T")


class IdempotencyContention(Exception):
    """The key kept changing hands while this request tried to claim it."""


def parse_idempotency_key(request: web.Request) -> str | None:
    """The optional Idempotency-Key: 1 to 255 printable ASCII characters, sent once."""
    key = header_once(request, IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not key:
        problem = "it is empty"
    elif len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        problem = f"it is {len(key)} characters long"
    elif not all(" " <= char <= "~" for char in key):
        problem = "it contains a character that is not printable ASCII"
    else:
        return key
    raise BadRequest(
        f"{IDEMPOTENCY_HEADER} header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable "
        f"ASCII characters; {problem}"
    )


@dataclass(frozen=True)
class KeyedTable:
    """SQL of a table whose rows hold keys, one live holder per owner and key. Both
    statements take $1 the owner, $2 the key and $3 IDEMPOTENCY_WINDOW_SECONDS."""

    table: str
    # The column of the key's owner.
    owner: str
    # The row that holds the key within the window.
    holder: str

    @cached_property
    def release(self) -> str:
        """Clears the key on its holder if the holder is past the window."""
        return f"""
            UPDATE {self.table} SET idempotency_key = NULL
            WHERE {self.owner} = $1 AND idempotency_key = $2
              AND created_at <= now() - make_interval(secs => $3)
        """


@dataclass(frozen=True)
class Held:
    """The key's live holder, which answers instead; nothing was written."""

    row: asyncpg.Record


async def claim_key(
    conn: asyncpg.Connection,
    table: KeyedTable,
    owner: object,
    key: str,
    insert: Callable[[], Awaitable[T | None]],
) -> T | Held:
    """Claim `key` for `owner` with `insert` (a row holding the key, skipped when the key
    is held): its result if it inserted, else the holder. Run it in the caller's
    transaction.

    Concurrent claims of one key take turns on an advisory lock held to the end of the
    transaction, so the second sees the first's committed row. (uploads also has a unique
    index on the key; events is partitioned by day, and no index keeps a key unique across
    partitions.) An expired key is released first by clearing it on its old holder; the
    old row keeps everything else.
    Raises IdempotencyContention if the key kept changing hands.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{owner}:{key}")
    for _ in range(IDEMPOTENCY_ROUNDS):
        await conn.execute(table.release, owner, key, IDEMPOTENCY_WINDOW_SECONDS)
        inserted = await insert()
        if inserted is not None:
            return inserted
        holder = await conn.fetchrow(table.holder, owner, key, IDEMPOTENCY_WINDOW_SECONDS)
        if holder is not None:
            return Held(holder)
        # The holder expired or was pruned between our statements: go round again.
    raise IdempotencyContention(f"Idempotency-Key {key!r} kept changing hands")
