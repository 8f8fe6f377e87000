"""The exceptions the clients raise: one per kind of error answer, all an `ApiError`."""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """A non-2xx answer: its status, the envelope's `message` and `data`, and `Retry-After`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.data = data or {}
        # Seconds to wait before trying again (429 and 503 carry it), else None.
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: malformed input; the message names the field."""


class Unauthorized(ApiError):
    """401: no API key, or an unknown or revoked one."""


class Forbidden(ApiError):
    """403: not the key's user, or an event type only the system publishes."""


class NotFound(ApiError):
    """404: an unknown or deleted id (or another user's)."""


class Conflict(ApiError):
    """409: a disabled webhook, an archived event type, or a name that is taken."""


class Unprocessable(ApiError):
    """422: a payload failing its type's schema (the message names the JSON pointer), or an
    Idempotency-Key already used for something else."""


class TooLarge(ApiError):
    """413: the body (a file, an event's payload) is over the limit."""


class RateLimited(ApiError):
    """429: over the rate limit; wait `retry_after` seconds."""


class Unavailable(ApiError):
    """503: a dependency of the service is down; wait `retry_after` seconds."""


ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    422: Unprocessable,
    429: RateLimited,
    503: Unavailable,
}


def retry_after_seconds(value: str | None) -> float | None:
    """The service sends delay-seconds; an HTTP date or garbage counts as absent."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def api_error(status: int, content: bytes, retry_after: str | None) -> ApiError:
    """The typed error for an answer; a body that is not the envelope still gives a message."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = content.decode(errors="replace")
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message: str = body["message"]
        data = body.get("data") if isinstance(body.get("data"), dict) else None
    else:
        message, data = str(body)[:500] or f"HTTP {status}", None
    kind = ERRORS_BY_STATUS.get(status, ApiError)
    return kind(status, message, data=data, retry_after=retry_after_seconds(retry_after))
