"""Cursor pagination of lists, newest first: `limit`, an opaque `cursor`, and `next_cursor`."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.web import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        raw = f"{self.kind}:{micros}:{self.id.hex}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: str) -> Cursor | None:
    if raw is None:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
        found_kind, micros, hex_id = text.split(":")
        if found_kind != kind:
            raise ValueError(f"a cursor of another list ({found_kind})")
        created_at = EPOCH + timedelta(microseconds=int(micros))
        return Cursor(kind, created_at, uuid.UUID(hex=hex_id))
    except (ValueError, UnicodeError, binascii.Error, OverflowError):
        raise BadRequest(
            f"cursor {raw!r} is not valid: pass the next_cursor of the previous page"
        ) from None


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw)
    raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")


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
