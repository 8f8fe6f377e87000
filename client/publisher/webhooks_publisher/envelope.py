"""What every client shares: its request headers, and reading a generated answer into its
envelope's `data`, its page or its `ApiError`."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import api_error
from .generated.models import ErrorEnvelope
from .generated.types import Response

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "webhooks-publisher/0.2.0"
Item = TypeVar("Item")
# What a generated `asyncio_detailed` returns, and its `sync_detailed` twin (unasync swaps
# the names in async_base.py).
AsyncAnswer = Awaitable[Response[Any]]
Answer = Response[Any]


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a list, newest first; pass `next_cursor` as `cursor` for the next one
    (None on the last page)."""

    items: list[Item]
    next_cursor: str | None


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def envelope_of(response: Response[Any]) -> Any:
    """The parsed envelope of a 2xx answer; any other answer raises its `ApiError`."""
    parsed = response.parsed
    if response.status_code < 300 and parsed is not None and not isinstance(parsed, ErrorEnvelope):
        return parsed
    raise api_error(response.status_code, response.content, response.headers.get("Retry-After"))


def page_of(response: Response[Any]) -> Page[Any]:
    envelope = envelope_of(response)
    return Page(items=envelope.data, next_cursor=envelope.next_cursor)
