"""What every client shares: its request headers, and reading an answer's envelope into its
data, its page or its `ApiError`."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import api_error
from .models import JsonObject, Page

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "webhooks-publisher/0.1.0"


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def read_envelope(response: httpx.Response) -> JsonObject:
    """The envelope of a 2xx answer; any other answer raises its `ApiError`."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.is_success and isinstance(body, dict) and "data" in body:
        return body
    raise api_error(response.status_code, body, response.headers.get("Retry-After"))


def page_of(envelope: JsonObject) -> Page[Any]:
    return Page(items=envelope["data"], next_cursor=envelope.get("next_cursor"))
