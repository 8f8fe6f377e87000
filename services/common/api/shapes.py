"""The envelope every answer is wrapped in, the upload's answer, and the API's timestamp type."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from services.common.timefmt import api_time

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
