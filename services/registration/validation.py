"""Validate a webhook registration body; every error names the field and what is wrong."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from services.common.web import BadRequest

MAX_URL_LENGTH = 2048
MAX_USER_ID = 2**63 - 1
# RFC 9110 token characters.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
RESERVED_PAYLOAD_KEYS = frozenset({"type", "timestamp", "data"})
# Abuse limits: every delivery carries these, so they stay small.
MAX_CUSTOM_PAYLOAD_BYTES = 16 * 1024
MAX_CUSTOM_HEADERS = 32
MAX_CUSTOM_HEADERS_BYTES = 8 * 1024
REGISTRATION_FIELDS = frozenset(
    {"event_type_id", "user_id", "url", "custom_headers", "custom_payload"}
)


@dataclass(frozen=True)
class NewWebhook:
    event_type_id: uuid.UUID
    user_id: int
    url: str
    custom_headers: dict[str, str] = field(default_factory=dict)
    custom_payload: dict[str, Any] = field(default_factory=dict)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_uuid(value: Any, name: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a UUID string, got {_type_name(value)}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadRequest(f"{name} must be a UUID, got {value!r}") from None


def parse_user_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"user_id must be a positive integer, got {_type_name(value)}")
    if value <= 0 or value > MAX_USER_ID:
        raise BadRequest(f"user_id must be a positive integer, got {value}")
    return value


def parse_url(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"url must be a string, got {_type_name(value)}")
    if len(value) > MAX_URL_LENGTH:
        raise BadRequest(f"url must be at most {MAX_URL_LENGTH} characters, got {len(value)}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise BadRequest("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest(f"url must be an absolute http or https URL, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise BadRequest("url must be an absolute http or https URL with a host")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        # An empty or over-long label: no resolver takes it.
        raise BadRequest(f"url host {parts.hostname!r} is not a valid host name") from None
    if parts.username is not None or parts.password is not None:
        raise BadRequest("url must not contain credentials; use custom_headers instead")
    if port == 0:
        raise BadRequest("url port must be between 1 and 65535")
    return value


def parse_custom_headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"custom_headers must be an object, got {_type_name(value)}")
    if len(value) > MAX_CUSTOM_HEADERS:
        raise BadRequest(
            f"custom_headers may hold at most {MAX_CUSTOM_HEADERS} headers, got {len(value)}"
        )
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not HEADER_NAME.fullmatch(name):
            raise BadRequest(f"custom_headers name {name!r} is not a valid HTTP header name")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise BadRequest(f"custom_headers may not set {name!r}: it is set by the dispatcher")
        if not isinstance(header_value, str):
            raise BadRequest(
                f"custom_headers[{name!r}] must be a string, got {_type_name(header_value)}"
            )
        if any(ch in header_value for ch in "\r\n\x00"):
            raise BadRequest(f"custom_headers[{name!r}] must not contain CR, LF or NUL")
        headers[name] = header_value
    size = sum(len(name.encode()) + len(text.encode()) for name, text in headers.items())
    if size > MAX_CUSTOM_HEADERS_BYTES:
        raise BadRequest(
            f"custom_headers may total at most {MAX_CUSTOM_HEADERS_BYTES} bytes of names and "
            f"values, got {size}"
        )
    return headers


def parse_custom_payload(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"custom_payload must be an object, got {_type_name(value)}")
    reserved = sorted(RESERVED_PAYLOAD_KEYS.intersection(value))
    if reserved:
        raise BadRequest(
            f"custom_payload may not use the reserved key(s) {', '.join(reserved)}: "
            "they carry the event"
        )
    if _contains_nul(value):
        # PostgreSQL's jsonb cannot store U+0000.
        raise BadRequest("custom_payload must not contain the NUL character (\\u0000)")
    size = len(orjson.dumps(value))
    if size > MAX_CUSTOM_PAYLOAD_BYTES:
        raise BadRequest(
            f"custom_payload may be at most {MAX_CUSTOM_PAYLOAD_BYTES} bytes as JSON, got {size}"
        )
    return value


def _contains_nul(value: Any) -> bool:
    """True if a NUL is in any string or key of a JSON value (iteratively: no recursion limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_registration(body: dict[str, Any], default_user_id: int | None = None) -> NewWebhook:
    """A registration body; `user_id` may be left out when the API key says whose it is."""
    unknown = sorted(set(body) - REGISTRATION_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    if "user_id" not in body and default_user_id is not None:
        body = {**body, "user_id": default_user_id}
    for name in ("event_type_id", "user_id", "url"):
        if name not in body:
            raise BadRequest(f"{name} is required")
    return NewWebhook(
        event_type_id=parse_uuid(body["event_type_id"], "event_type_id"),
        user_id=parse_user_id(body["user_id"]),
        url=parse_url(body["url"]),
        custom_headers=parse_custom_headers(body.get("custom_headers")),
        custom_payload=parse_custom_payload(body.get("custom_payload")),
    )


# --- management: updates, query strings, recover ----------------------------------------------

UPDATE_FIELDS = ("url", "custom_headers", "custom_payload", "disabled")
DELIVERY_STATUSES = ("pending", "succeeded", "failed", "not_attempted", "cancelled")


@dataclass(frozen=True)
class WebhookUpdate:
    """What a PATCH changes; None means "leave as it is"."""

    url: str | None = None
    custom_headers: dict[str, str] | None = None
    custom_payload: dict[str, Any] | None = None
    disabled: bool | None = None


def parse_update(body: dict[str, Any]) -> WebhookUpdate:
    """A PATCH body: any of the updatable fields, validated as at registration."""
    fixed = sorted(set(body).intersection(REGISTRATION_FIELDS) - set(UPDATE_FIELDS))
    if fixed:
        raise BadRequest(
            f"field(s) cannot be changed: {', '.join(fixed)}; register a new webhook instead"
        )
    unknown = sorted(set(body) - set(UPDATE_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    if not body:
        raise BadRequest(f"nothing to update: send at least one of {', '.join(UPDATE_FIELDS)}")
    disabled = body.get("disabled")
    if "disabled" in body and not isinstance(disabled, bool):
        raise BadRequest(f"disabled must be true or false, got {_type_name(disabled)}")
    return WebhookUpdate(
        url=parse_url(body["url"]) if "url" in body else None,
        # null clears them, as leaving them out does at registration.
        custom_headers=(
            parse_custom_headers(body["custom_headers"]) if "custom_headers" in body else None
        ),
        custom_payload=(
            parse_custom_payload(body["custom_payload"]) if "custom_payload" in body else None
        ),
        disabled=disabled,
    )


def parse_path_id(raw: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a UUID, got {raw!r}") from None


def parse_query_user_id(raw: str | None, default: int | None = None) -> int:
    if raw is None and default is not None:
        return default
    if raw is None:
        raise BadRequest("user_id is required: GET /webhook?user_id=N")
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"user_id must be a positive integer, got {raw!r}")
    return parse_user_id(int(raw))


def parse_status(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw not in DELIVERY_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(DELIVERY_STATUSES)}, got {raw!r}")
    return raw


def parse_since(body: dict[str, Any]) -> datetime:
    """`since` of a recover: ISO 8601, with or without an offset (none means UTC)."""
    unknown = sorted(set(body) - {"since"})
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
    if "since" not in body:
        raise BadRequest("since is required: an ISO 8601 date-time, e.g. 2026-11-28T09:00:00Z")
    raw = body["since"]
    if not isinstance(raw, str):
        raise BadRequest(f"since must be an ISO 8601 date-time string, got {_type_name(raw)}")
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"since must be an ISO 8601 date-time, got {raw!r}") from None
    if since.tzinfo is None:
        return since.replace(tzinfo=UTC)
    try:
        return since.astimezone(UTC)
    except OverflowError:
        raise BadRequest(f"since is out of range, got {raw!r}") from None
