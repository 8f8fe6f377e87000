"""The registration service's request shapes, and the checks of ours they run after parsing.

Each model here is the one declaration of a request: the service validates with it and the
OpenAPI document shows its JSON schema. Every refusal names the field and what is wrong."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, WithJsonSchema

from services.common.api.edge import refuse, validated, validated_as
from services.common.api.json_values import JSON_VALUE, NO_NUL, contains_nul, nullable_object
from services.common.api.shapes import MAX_USER_ID, UserId
from services.common.signing_keys import RESCHEME_HELP, SCHEME_HELP
from services.common.signing_keys import SignatureScheme as Scheme
from services.common.system_events import UPLOAD_EVENT_TYPE_ID
from services.common.web import BadRequest

from .pagination import DEFAULT_LIMIT, DELIVERY_CURSOR, MAX_LIMIT, WEBHOOK_CURSOR, cursor_pattern
from .webhook_options import EventFilter, MaxConcurrency, RetrySchedule, TimeoutSeconds

MAX_URL_LENGTH = 2048
# RFC 9110 token characters.
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
RESERVED_HEADERS = ("connection", "content-length", "host", "transfer-encoding")
RESERVED_PAYLOAD_KEYS = ("data", "timestamp", "type")
# Abuse limits: every delivery carries these, so they stay small.
MAX_CUSTOM_PAYLOAD_BYTES = 16 * 1024
MAX_CUSTOM_HEADERS = 32
MAX_CUSTOM_HEADERS_BYTES = 8 * 1024
# Per-webhook options (SPEC §8): in a PATCH, null sets the default.
WEBHOOK_OPTIONS = ("filter", "retry_schedule", "timeout_seconds", "max_concurrency")
DeliveryStatus = Literal["pending", "succeeded", "failed", "not_attempted", "cancelled"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)
# The `upload file` event type, seeded by the first migration (the original design's id).
UPLOAD_FILE_EVENT_TYPE_ID = str(UPLOAD_EVENT_TYPE_ID)

# What a URL may look like, so strictly that whatever matches passes every check below
# (a host name or IP literal, a port from 1 to 65535, printable ASCII after it).
_H16 = "[0-9A-Fa-f]{1,4}"
_DEC_OCTET = "25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]"
_IPV4 = rf"(?:{_DEC_OCTET})(?:\.(?:{_DEC_OCTET})){{3}}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"


def _before_gap(pieces: int) -> str:
    """RFC 3986's `[ *(pieces-1)( h16 ":" ) h16 ]` before a "::"."""
    return f"(?:(?:{_H16}:){{0,{pieces - 1}}}{_H16})?" if pieces else ""


# RFC 3986 §3.2.2 IPv6address, each of its nine forms in order (IPv4-embedded ones included).
_IPV6 = "|".join(
    [
        f"(?:{_H16}:){{6}}{_LS32}",
        *(f"{_before_gap(5 - after)}::(?:{_H16}:){{{after}}}{_LS32}" for after in range(5, -1, -1)),
        f"{_before_gap(6)}::{_H16}",
        f"{_before_gap(7)}::",
    ]
)
_PORT = "6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}"
_LABEL = "[A-Za-z0-9-]{1,63}"
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:(?:{_LABEL}\.)*{_LABEL}\.?|\[(?:{_IPV6})\])"
    rf"(?::(?:{_PORT}))?(?:[/?#][!-~]*)?$"
)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _url_problem(value: str) -> str | None:
    """Today's specific reasons a URL is refused; the pattern catches whatever is left."""
    if len(value) > MAX_URL_LENGTH:
        return f"url must be at most {MAX_URL_LENGTH} characters, got {len(value)}"
    if any(ch.isspace() or not " " < ch < "\x7f" for ch in value):
        return "url must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"url is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"url must be an absolute http or https URL, got scheme {parts.scheme!r}"
    if not parts.hostname:
        return "url must be an absolute http or https URL with a host"
    if parts.username is not None or parts.password is not None:
        return "url must not contain credentials; use custom_headers instead"
    if port == 0:
        return "url port must be between 1 and 65535"
    if not re.fullmatch(URL_PATTERN, value):
        return f"url host {parts.hostname!r} is not a valid host name or IP address"
    return None


def check_url(value: Any) -> Any:
    if not isinstance(value, str):
        raise refuse(f"url must be a string, got {_type_name(value)}")
    problem = _url_problem(value)
    if problem:
        raise refuse(problem)
    return value


def _object_or_empty(value: Any, field: str) -> dict[str, Any]:
    """null is an empty object; anything else must be an object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse(f"{field} must be an object, got {_type_name(value)}")
    return value


def check_custom_headers(value: Any) -> Any:
    """null is no headers; names are tokens the dispatcher does not set, values one line."""
    value = _object_or_empty(value, "custom_headers")
    if len(value) > MAX_CUSTOM_HEADERS:
        raise refuse(
            f"custom_headers may hold at most {MAX_CUSTOM_HEADERS} headers, got {len(value)}"
        )
    for name, text in value.items():
        if not re.fullmatch(HEADER_NAME_PATTERN, name):
            raise refuse(f"custom_headers name {name!r} is not a valid HTTP header name")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise refuse(f"custom_headers may not set {name!r}: it is set by the dispatcher")
        if not isinstance(text, str):
            raise refuse(f"custom_headers[{name!r}] must be a string, got {_type_name(text)}")
        if any(ch in text for ch in "\r\n\x00"):
            raise refuse(f"custom_headers[{name!r}] must not contain CR, LF or NUL")
    size = sum(len(name.encode()) + len(text.encode()) for name, text in value.items())
    if size > MAX_CUSTOM_HEADERS_BYTES:
        raise refuse(
            f"custom_headers may total at most {MAX_CUSTOM_HEADERS_BYTES} bytes of names and "
            f"values, got {size}"
        )
    return value


def check_custom_payload(value: Any) -> Any:
    """null is no payload; the reserved keys carry the event; jsonb cannot store NUL."""
    value = _object_or_empty(value, "custom_payload")
    reserved = sorted(set(RESERVED_PAYLOAD_KEYS).intersection(value))
    if reserved:
        raise refuse(
            f"custom_payload may not use the reserved key(s) {', '.join(reserved)}: "
            "they carry the event"
        )
    if contains_nul(value):
        raise refuse("custom_payload must not contain the NUL character (\\u0000)")
    size = len(orjson.dumps(value))
    if size > MAX_CUSTOM_PAYLOAD_BYTES:
        raise refuse(
            f"custom_payload may be at most {MAX_CUSTOM_PAYLOAD_BYTES} bytes as JSON, got {size}"
        )
    return value


def _any_case(word: str) -> str:
    return "".join(f"[{ch.upper()}{ch.lower()}]" if ch.isalpha() else re.escape(ch) for ch in word)


_RESERVED_HEADER_PATTERN = (
    "^(?:"
    + "|".join(_any_case(name) for name in RESERVED_HEADERS)
    + f"|{_any_case('webhook-')}.*)$"
)
Url = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        pattern=URL_PATTERN,
        description="Absolute http or https URL without credentials. Unless ALLOW_PRIVATE_URLS "
        "is true, a host that is or resolves to a loopback, private, link-local or metadata "
        "address is refused.",
        examples=["https://example.com/hooks/uploads"],
    ),
    # Runs first: today's specific messages; the pattern then holds whatever is left.
    BeforeValidator(check_url),
]
CustomHeaders = Annotated[
    dict[str, str] | None,
    BeforeValidator(check_custom_headers),
    WithJsonSchema(
        nullable_object(
            "Sent with every delivery; null is none. Names are RFC 9110 tokens and may not be "
            f"{', '.join(RESERVED_HEADERS)} or start with `webhook-` (any case); values may not "
            "contain CR, LF or NUL.",
            {"Authorization": "Bearer 3f9c"},
            maxProperties=MAX_CUSTOM_HEADERS,
            propertyNames={
                "pattern": HEADER_NAME_PATTERN,
                "not": {"pattern": _RESERVED_HEADER_PATTERN},
            },
            additionalProperties={"type": "string", "pattern": "^[^\\r\\n\\x00]*$"},
        )
    ),
]
CustomPayload = Annotated[
    dict[str, Any] | None,
    BeforeValidator(check_custom_payload),
    WithJsonSchema(
        nullable_object(
            "Merged into every delivery's JSON body; null is none. May not use the reserved keys "
            f"{', '.join(RESERVED_PAYLOAD_KEYS)}; no NUL in any string.",
            {"key1": "value1"},
            propertyNames={"pattern": NO_NUL, "not": {"enum": list(RESERVED_PAYLOAD_KEYS)}},
            additionalProperties=JSON_VALUE,
        )
    ),
]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookRegistration(RequestBody):
    """POST /webhook/register."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_type_id": UPLOAD_FILE_EVENT_TYPE_ID,
                    "user_id": 1,
                    "url": "https://example.com/hooks/uploads",
                    "custom_headers": {"Authorization": "Bearer 3f9c"},
                    "custom_payload": {"key1": "value1"},
                }
            ]
        }
    )

    event_type_id: uuid.UUID = Field(
        description="An id from GET /event_type.", examples=[UPLOAD_FILE_EVENT_TYPE_ID]
    )
    user_id: UserId = Field(
        description="With AUTH_MODE=api_key it may be left out (the key's user) and must "
        "otherwise be the key's user (403)."
    )
    url: Url
    custom_headers: CustomHeaders = {}
    custom_payload: CustomPayload = {}
    filter: EventFilter = None
    retry_schedule: RetrySchedule = None
    timeout_seconds: TimeoutSeconds = None
    signature_scheme: Scheme = Field("hmac", description=SCHEME_HELP)
    max_concurrency: MaxConcurrency = None


# The name the database layer knows a registration by.
NewWebhook = WebhookRegistration


def no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class WebhookPatch(RequestBody):
    """PATCH /webhook/{webhook_id}: any of these, validated as at registration.

    null clears custom_headers or custom_payload; `disabled: false` re-enables the webhook
    and clears `disabled_reason`."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"url": "https://example.com/hooks/v2", "disabled": False}],
        }
    )

    # Left out means "leave as it is" (None here); null is refused, as any non-string.
    url: Url = Field(None, json_schema_extra=no_default)  # type: ignore[assignment]
    custom_headers: CustomHeaders = None
    custom_payload: CustomPayload = None
    disabled: bool = Field(None, strict=True, json_schema_extra=no_default)  # type: ignore[assignment]
    filter: EventFilter = None
    retry_schedule: RetrySchedule = None
    timeout_seconds: TimeoutSeconds = None
    signature_scheme: Scheme = Field(None, description=RESCHEME_HELP, json_schema_extra=no_default)  # type: ignore[arg-type]
    max_concurrency: MaxConcurrency = None


@dataclass(frozen=True)
class WebhookUpdate:
    """What a PATCH changes; None means "leave as it is". `options` holds those of filter,
    retry_schedule, timeout_seconds and max_concurrency that were sent, where None means
    the default."""

    url: str | None = None
    custom_headers: dict[str, str] | None = None
    custom_payload: dict[str, Any] | None = None
    disabled: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    signature_scheme: Scheme | None = None


def _iso_datetime(value: Any) -> Any:
    if not isinstance(value, str):
        raise refuse(f"since must be an ISO 8601 date-time string, got {_type_name(value)}")
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise refuse(f"since must be an ISO 8601 date-time, got {value!r}") from None
    try:
        return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    except OverflowError:
        raise refuse(f"since is out of range, got {value!r}") from None


class RecoverRequest(RequestBody):
    """POST /webhook/{webhook_id}/recover."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"since": "2026-11-28T09:00:00Z"}]})

    since: Annotated[
        datetime,
        BeforeValidator(_iso_datetime),
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601; without an offset it is UTC.",
                "examples": ["2026-11-28T09:00:00Z"],
            }
        ),
    ]


# --- query strings --------------------------------------------------------------------------------

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Items per page.")]
_CURSOR_HELP = "Opaque: the `next_cursor` of the previous page."


class WebhookListQuery(BaseModel):
    user_id: Annotated[int, Field(ge=1, le=MAX_USER_ID)] = Field(
        description="With AUTH_MODE=api_key it may be left out (the key's user) and must "
        "otherwise be the key's user (403)."
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = Field(
        None, pattern=cursor_pattern(WEBHOOK_CURSOR), description=_CURSOR_HELP
    )


class DeliveryListQuery(BaseModel):
    status: DeliveryStatus | None = Field(None, description="Only deliveries in this state.")
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = Field(
        None, pattern=cursor_pattern(DELIVERY_CURSOR), description=_CURSOR_HELP
    )


# --- one field at a time ------------------------------------------------------------------------

_UUID = TypeAdapter(uuid.UUID)
_USER_ID = TypeAdapter(UserId)
_URL = TypeAdapter(Url)
_HEADERS = TypeAdapter(CustomHeaders)
_PAYLOAD = TypeAdapter(CustomPayload)


def parse_uuid(value: Any, name: str) -> uuid.UUID:
    return validated_as(_UUID, value, name)


def parse_user_id(value: Any) -> int:
    return validated_as(_USER_ID, value, "user_id")


def parse_url(value: Any) -> str:
    return validated_as(_URL, value, "url")


def parse_custom_headers(value: Any) -> dict[str, str]:
    return validated_as(_HEADERS, value, "custom_headers") or {}


def parse_custom_payload(value: Any) -> dict[str, Any]:
    return validated_as(_PAYLOAD, value, "custom_payload") or {}


def parse_registration(body: dict[str, Any], default_user_id: int | None = None) -> NewWebhook:
    """A registration body; `user_id` may be left out when the API key says whose it is."""
    if "user_id" not in body and default_user_id is not None:
        body = {**body, "user_id": default_user_id}
    return validated(WebhookRegistration, body)


def parse_update(body: dict[str, Any]) -> WebhookUpdate:
    """A PATCH body: any of the updatable fields, validated as at registration."""
    fixed = sorted(
        set(body) & (set(WebhookRegistration.model_fields) - set(WebhookPatch.model_fields))
    )
    if fixed:
        raise BadRequest(
            f"field(s) cannot be changed: {', '.join(fixed)}; register a new webhook instead"
        )
    if not body:
        fields = ", ".join(WebhookPatch.model_fields)
        raise BadRequest(f"nothing to update: send at least one of {fields}")
    patch = validated(WebhookPatch, body)
    given = {name: getattr(patch, name) for name in patch.model_fields_set}
    options = {name: given.pop(name) for name in WEBHOOK_OPTIONS if name in given}
    return WebhookUpdate(**given, options=options)
