"""The registration service's request models: its routes' bodies (queries.py: query strings).

Each model here is the one declaration of a request: the service validates with it and the
OpenAPI document shows its JSON schema. Every refusal names the field and what is wrong."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from services.common.api.edge import refuse, validated
from services.common.api.json_values import JSON_VALUE, NO_NUL, contains_nul, nullable_object
from services.common.api.shapes import UserId
from services.common.signing_keys import RESCHEME_HELP, SCHEME_HELP
from services.common.signing_keys import SignatureScheme as Scheme
from services.common.system_events import UPLOAD_EVENT_TYPE_ID
from services.common.web import BadRequest
from services.common.webhooks import ENDPOINT_AUTH_COLUMNS, WebhookUpdate

from .endpoint_auth_shapes import (
    TLS_CERTIFICATE_HELP,
    EndpointAuth,
    TlsCa,
    TlsClientCertificate,
    stored_columns,
)
from .url_grammar import MAX_URL_LENGTH, URL_PATTERN, url_problem
from .webhook_options import (
    EventFilter,
    MaxConcurrency,
    RateLimitPerSecond,
    RetrySchedule,
    TimeoutSeconds,
)

# RFC 9110 token characters.
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
RESERVED_HEADERS = ("connection", "content-length", "host", "transfer-encoding")
RESERVED_PAYLOAD_KEYS = ("data", "timestamp", "type")
# Abuse limits: every delivery carries these, so they stay small.
MAX_CUSTOM_PAYLOAD_BYTES = 16 * 1024
MAX_CUSTOM_HEADERS = 32
MAX_CUSTOM_HEADERS_BYTES = 8 * 1024
MAX_EVENT_TYPES = 100
# Per-webhook options (SPEC §8): in a PATCH, null sets the default.
WEBHOOK_OPTIONS = (
    "filter",
    "retry_schedule",
    "timeout_seconds",
    "max_concurrency",
    "rate_limit_per_second",
)
# The `upload file` event type, seeded by the first migration (the original design's id).
UPLOAD_FILE_EVENT_TYPE_ID = str(UPLOAD_EVENT_TYPE_ID)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_url(value: Any) -> Any:
    if not isinstance(value, str):
        raise refuse(f"url must be a string, got {_type_name(value)}")
    problem = url_problem(value)
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
    # `-` needs no escape outside a class, and `\-` is not valid in a Unicode-mode ECMAScript
    # pattern (the JSON Schema dialect of validators such as Redocly's).
    return "".join(
        f"[{ch.upper()}{ch.lower()}]" if ch.isalpha() else ch if ch == "-" else re.escape(ch)
        for ch in word
    )


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
    # Runs first, for its specific messages; the pattern then holds whatever is left.
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


def no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def check_distinct(value: list[uuid.UUID]) -> list[uuid.UUID]:
    for index, type_id in enumerate(value):
        if type_id in value[:index]:
            raise refuse(f"event_type_ids[{index}]: {type_id} is given twice")
    return value


def _distinct_ids(schema: dict[str, Any]) -> None:
    no_default(schema)
    schema["uniqueItems"] = True


EventTypeIds = Annotated[
    list[uuid.UUID],
    Field(min_length=1, max_length=MAX_EVENT_TYPES),
    AfterValidator(check_distinct),
]
TYPES_HELP = (
    "The event types it subscribes to (ids from GET /event_type), 1 to "
    f"{MAX_EVENT_TYPES}, distinct, in the order shown; one secret signs them all."
)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeliveryOptions(RequestBody):
    """The options of a webhook's deliveries, declared alike for a registration and a PATCH.

    A subclass lists this class first among its bases, after which its other base's fields
    come first (pydantic orders fields by base; the order is the document's, that of the first
    refusal and of PATCH's "at least one of"). Left out is None: the service's default at
    registration, "leave as it is" in a PATCH."""

    filter: EventFilter = None
    retry_schedule: RetrySchedule = None
    timeout_seconds: TimeoutSeconds = None
    signature_scheme: Scheme = Field(None, description=RESCHEME_HELP, json_schema_extra=no_default)  # type: ignore[arg-type]
    max_concurrency: MaxConcurrency = None
    rate_limit_per_second: RateLimitPerSecond = None
    auth: EndpointAuth | None = None
    tls_client_certificate: TlsClientCertificate | None = Field(
        None, description=TLS_CERTIFICATE_HELP
    )
    tls_ca: TlsCa = None


class _RegistrationTarget(RequestBody):
    """What only a registration gives: its types, its user, its endpoint and what it adds."""

    event_type_id: uuid.UUID = Field(  # type: ignore[assignment]
        None,
        description="An id from GET /event_type: the same as `event_type_ids` of one.",
        examples=[UPLOAD_FILE_EVENT_TYPE_ID],
        json_schema_extra=no_default,
    )
    event_type_ids: EventTypeIds = Field(
        None,  # type: ignore[arg-type]
        description=f"{TYPES_HELP} Instead of `event_type_id`.",
        examples=[[UPLOAD_FILE_EVENT_TYPE_ID]],
        json_schema_extra=_distinct_ids,
    )
    user_id: UserId = Field(
        description="With AUTH_MODE=api_key it may be left out (the key's user) and must "
        "otherwise be the key's user (403)."
    )
    url: Url
    # Left out is none, as null is: the document's default is null, consistent with the type.
    custom_headers: CustomHeaders = Field({}, json_schema_extra={"default": None})
    custom_payload: CustomPayload = Field({}, json_schema_extra={"default": None})


class WebhookRegistration(DeliveryOptions, _RegistrationTarget):
    """POST /webhook/register: exactly one of `event_type_id` and `event_type_ids`."""

    model_config = ConfigDict(
        json_schema_extra={
            # Exactly one of the two, said so that generators keep the body's model (a oneOf
            # of bare `required` lists makes openapi-python-client drop it).
            "if": {"required": ["event_type_id"]},
            "then": {"not": {"required": ["event_type_ids"]}},
            "else": {"required": ["event_type_ids"]},
            "examples": [
                {
                    "event_type_id": UPLOAD_FILE_EVENT_TYPE_ID,
                    "user_id": 1,
                    "url": "https://example.com/hooks/uploads",
                    "custom_headers": {"Authorization": "Bearer 3f9c"},
                    "custom_payload": {"key1": "value1"},
                }
            ],
        }
    )

    signature_scheme: Scheme = Field("hmac", description=SCHEME_HELP)

    @model_validator(mode="after")
    def one_type_field(self) -> WebhookRegistration:
        given = {"event_type_id", "event_type_ids"} & self.model_fields_set
        if not given:
            raise refuse("event_type_id is required (or event_type_ids, a list of type ids)")
        if len(given) > 1:
            raise refuse("give event_type_id or event_type_ids (a list of type ids), not both")
        return self

    @property
    def type_ids(self) -> list[uuid.UUID]:
        """The types given, either way."""
        if self.event_type_id is not None:
            return [self.event_type_id]
        return list(self.event_type_ids)


class _PatchTarget(RequestBody):
    """What a PATCH may change besides the delivery options."""

    # Left out means "leave as it is" (None here); null is refused, as any non-string.
    url: Url = Field(None, json_schema_extra=no_default)  # type: ignore[assignment]
    event_type_ids: EventTypeIds = Field(
        None,  # type: ignore[arg-type]
        description=f"{TYPES_HELP} Replaces the webhook's list whole.",
        examples=[[UPLOAD_FILE_EVENT_TYPE_ID]],
        json_schema_extra=_distinct_ids,
    )
    custom_headers: CustomHeaders = None
    custom_payload: CustomPayload = None
    disabled: bool = Field(None, strict=True, json_schema_extra=no_default)  # type: ignore[assignment]


class WebhookPatch(DeliveryOptions, _PatchTarget):
    """PATCH /webhook/{webhook_id}: any of these, validated as at registration.

    `event_type_ids` replaces the webhook's list whole; null clears custom_headers or
    custom_payload; `disabled: false` re-enables the webhook and clears `disabled_reason`."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"url": "https://example.com/hooks/v2", "disabled": False}],
        }
    )

    def as_update(self) -> WebhookUpdate:
        """What the PATCH changes, for the writer (services.common.webhooks)."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        options = {name: given.pop(name) for name in WEBHOOK_OPTIONS if name in given}
        configuration = stored_columns(given, ENDPOINT_AUTH_COLUMNS)
        return WebhookUpdate(**given, options=options, configuration=configuration)


def _iso_datetime(value: Any, info: ValidationInfo) -> Any:
    name = info.field_name
    if not isinstance(value, str):
        raise refuse(f"{name} must be an ISO 8601 date-time string, got {_type_name(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise refuse(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise refuse(f"{name} is out of range, got {value!r}") from None


ClientTime = Annotated[
    datetime,
    BeforeValidator(_iso_datetime),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time a client gives: ISO 8601, `YYYY-MM-DD HH:MM:SS` (as answers show times) too."""


class RecoverRequest(RequestBody):
    """POST /webhook/{webhook_id}/recover."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"since": "2026-11-28T09:00:00Z"}]})

    since: ClientTime = Field(
        description="ISO 8601; without an offset it is UTC.", examples=["2026-11-28T09:00:00Z"]
    )


def parse_patch(body: dict[str, Any]) -> WebhookPatch:
    """A PATCH body: any of the updatable fields, validated as at registration."""
    fixed = sorted(
        set(body) & (set(WebhookRegistration.model_fields) - set(WebhookPatch.model_fields))
    )
    if fixed:
        instead = (
            "send event_type_ids, the whole list"
            if fixed == ["event_type_id"]
            else "register a new webhook instead"
        )
        raise BadRequest(f"field(s) cannot be changed: {', '.join(fixed)}; {instead}")
    if not body:
        fields = ", ".join(WebhookPatch.model_fields)
        raise BadRequest(f"nothing to update: send at least one of {fields}")
    return validated(WebhookPatch, body)
