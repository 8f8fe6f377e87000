"""Validate a webhook registration body; every error names the field and what is wrong."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from services.common.web import BadRequest

MAX_URL_LENGTH = 2048
MAX_USER_ID = 2**63 - 1
# RFC 9110 token characters.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
RESERVED_PAYLOAD_KEYS = frozenset({"type", "timestamp", "data"})
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
    return value


def parse_registration(body: dict[str, Any]) -> NewWebhook:
    unknown = sorted(set(body) - REGISTRATION_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
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
