"""The envelope every answer is wrapped in, the ingest routes' shapes (uploads, events, test
events), and the API's timestamp type."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.common.ordering import MAX_ORDERING_KEY_LENGTH
from services.common.timefmt import api_time

from .json_values import JSON_OBJECT, contains_nul, integral_number

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
TIMESTAMP_SCHEMA = {
    "type": "string",
    "pattern": TIMESTAMP_PATTERN,
    "description": "UTC, `YYYY-MM-DD HH:MM:SS`.",
    "examples": ["2026-11-28 09:30:00"],
}

ApiTime = Annotated[
    datetime,
    PlainSerializer(api_time, return_type=str),
    WithJsonSchema(TIMESTAMP_SCHEMA, mode="serialization"),
]
"""A time as every response shows it: UTC, `YYYY-MM-DD HH:MM:SS`."""

MAX_USER_ID = 2**63 - 1
UserId = Annotated[int, Field(strict=True, ge=1, le=MAX_USER_ID), BeforeValidator(integral_number)]
"""A user id as a JSON body gives it: a positive integer (bigint)."""

Data = TypeVar("Data")


class Shape(BaseModel):
    """A response shape: built from rows or values, fields beyond the shape ignored."""

    # Every field of an answer is always there, defaults included.
    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_serialization_defaults_required=True
    )


class Envelope(Shape, Generic[Data]):
    """Every successful answer: `data` is the route's shape."""

    message: str
    data: Data
    error: Literal[False] = False


class Page(Shape, Generic[Data]):
    """A list, newest first; `next_cursor` is null on the last page."""

    message: str
    data: list[Data]
    error: Literal[False] = False
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ErrorEnvelope(Shape):
    """Every error: `message` says which field and what was wrong."""

    message: str
    data: dict[str, Any]
    error: Literal[True]


class Upload(Shape):
    """A stored upload: the answer of the upload route and, with `uploaded_at`, the event's data."""

    upload_id: uuid.UUID
    webhook_id: uuid.UUID
    filename: str
    size: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    content_type: str


# A part's name travels in its Content-Disposition header, whose value may hold no control
# character but HTAB (RFC 9110 §5.5; aiohttp's part parser refuses the whole body). The form
# encoding (RFC 7578, WHATWG) percent-encodes CR, LF and `"` in names, and nothing else.
PART_NAME_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class UploadForm(BaseModel):
    """The upload route's multipart body: the file in the field `file`; other parts ignored."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": "Parts other than `file` are ignored, but every part's headers must "
            "be valid: a part's name or filename may hold no control character but HTAB, CR "
            "and LF (the form encoding, RFC 7578 and WHATWG, percent-encodes CR and LF); "
            "otherwise the body is malformed (400).",
            "propertyNames": {"pattern": PART_NAME_PATTERN},
        }
    )

    file: Annotated[
        bytes,
        WithJsonSchema(
            {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "description": "The file; streamed to storage, at most MAX_UPLOAD_BYTES.",
            }
        ),
    ]


# --- events (POST /event, served by the upload service) -----------------------------------------

EVENT_TYPE_NAME_PATTERN = "^[^\\x00]{1,100}$"
ORDERING_KEY_PATTERN = f"^[^\\x00]{{1,{MAX_ORDERING_KEY_LENGTH}}}$"
ORDERING_KEY_HELP = (
    "Deliveries of events with the same key go to each webhook one at a time, in the order "
    "the events were accepted: the next waits until the previous one has succeeded or "
    "ended (`failed` after its retry schedule, or `cancelled`). Other keys, and events "
    "without one, are not held up by it. 1 to 200 characters."
)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _json_object(value: Any) -> Any:
    if isinstance(value, dict) and contains_nul(value):
        raise PydanticCustomError("refused", "payload must not contain the NUL character (\\u0000)")
    return value


class EventRequest(BaseModel):
    """POST /event: an event of one type for one user; exactly one of `event_type` and
    `event_type_id`."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            # Exactly one of the two, said so that generators keep the body's model (a oneOf
            # of bare `required` lists makes openapi-python-client drop it).
            "if": {"required": ["event_type"]},
            "then": {"not": {"required": ["event_type_id"]}},
            "else": {"required": ["event_type_id"]},
            "examples": [
                {"event_type": "invoice.paid", "user_id": 1, "payload": {"invoice_id": "in_1"}}
            ],
        },
    )

    # Left out is None; null is refused (the document states no null).
    event_type: str = Field(  # type: ignore[assignment]
        None,
        strict=True,
        pattern=EVENT_TYPE_NAME_PATTERN,
        description="The type's name (GET /event_type).",
        json_schema_extra=_no_default,
    )
    event_type_id: uuid.UUID = Field(  # type: ignore[assignment]
        None,
        description="The type's id, instead of its name.",
        json_schema_extra=_no_default,
    )
    user_id: UserId = Field(
        description="Whose event: it goes to that user's webhooks. With AUTH_MODE=api_key it "
        "may be left out (the key's user) and must otherwise be the key's user (403)."
    )
    payload: Annotated[
        dict[str, Any],
        BeforeValidator(_json_object),
        WithJsonSchema(
            {
                **JSON_OBJECT,
                "description": "Sent as the delivery's `data`; must satisfy the type's schema "
                "(422 naming the failing location).",
            }
        ),
    ]

    ordering_key: str = Field(  # type: ignore[assignment]
        None,
        strict=True,
        min_length=1,
        max_length=MAX_ORDERING_KEY_LENGTH,
        pattern=ORDERING_KEY_PATTERN,
        description=ORDERING_KEY_HELP,
        examples=["customer-42"],
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def one_type(self) -> EventRequest:
        given = {"event_type", "event_type_id"} & self.model_fields_set
        if len(given) != 1:
            problem = "not both" if given else "one is required"
            raise PydanticCustomError(
                "refused",
                "give event_type (a name) or event_type_id, {problem}",
                {"problem": problem},
            )
        return self


class AcceptedEvent(Shape):
    """The answer to POST /event: the event is durable; its deliveries follow."""

    event_id: uuid.UUID = Field(description="GET /event/{event_id} shows it and its deliveries.")
    event_type: str = Field(description="The type's name on the wire.")
    user_id: int
    created_at: ApiTime


class SendTestEvent(BaseModel):
    """POST /webhook/{webhook_id}/test: both optional (an empty body, or none, is fine)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{}, {"event_type": "invoice.paid"}]},
    )

    event_type: str = Field(  # type: ignore[assignment]
        None,
        strict=True,
        pattern=EVENT_TYPE_NAME_PATTERN,
        description="The name of one of the webhook's types (400 otherwise); any type, the "
        "system's included. Left out: the webhook's first type.",
        json_schema_extra=_no_default,
    )
    payload: Annotated[
        dict[str, Any],
        BeforeValidator(_json_object),
        WithJsonSchema(
            {
                **JSON_OBJECT,
                "description": "Sent as the delivery's `data`; must satisfy the type's schema "
                "(422 naming the failing location). Left out: a sample valid for the schema, "
                'else `{"test": true}`.',
            }
        ),
    ] = Field(None, json_schema_extra=_no_default)  # type: ignore[arg-type]


class SentTestEvent(Shape):
    """The answer to a test event: recorded (`test: true`) with its one delivery."""

    event_id: uuid.UUID = Field(description="GET /event/{event_id} shows it, `test: true`.")
    delivery_id: uuid.UUID = Field(description="GET /delivery/{delivery_id} follows it.")
