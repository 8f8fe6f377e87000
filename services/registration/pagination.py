"""Cursor pagination of lists, newest first: `limit`, an opaque `cursor`, and `next_cursor`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.web import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# The events log's pages (SPEC §14): the console shows 20 at a time.
EVENT_DEFAULT_LIMIT = 20
EVENT_MAX_LIMIT = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEBHOOK_CURSOR = "w"
DELIVERY_CURSOR = "d"
EVENT_CURSOR = "e"
API_KEY_CURSOR = "k"


def cursor_pattern(kind: str) -> str:
    """Every cursor of the `kind` list, and nothing else: the document states it exactly.

    At most 17 digits of microseconds (up to the year 5138) keep every match a valid time.
    """
    return f"^{kind}([0-9]{{1,17}})_([0-9a-f]{{32}})$"


@dataclass(frozen=True)
class Cursor:
    """The position after which a page starts: the last item's creation time and id.

    `kind` keeps a cursor of one list from being used on another.
    """

    kind: str
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        micros = (self.created_at - EPOCH) // timedelta(microseconds=1)
        return f"{self.kind}{micros}_{self.id.hex}"


def decode_cursor(raw: str | None, kind: str) -> Cursor | None:
    if raw is None:
        return None
    found = re.fullmatch(cursor_pattern(kind), raw)
    if found is None:
        raise BadRequest(f"cursor {raw!r} is not valid: pass the next_cursor of the previous page")
    created_at = EPOCH + timedelta(microseconds=int(found[1]))
    return Cursor(kind, created_at, uuid.UUID(hex=found[2]))


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    next_cursor: str | None


def page_of(rows: Sequence[Any], limit: int, kind: str) -> Page:
    """`rows` were fetched with LIMIT limit + 1: one more means there is a next page."""
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Cursor(kind, last["created_at"], last["id"]).encode())
