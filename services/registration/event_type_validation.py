"""Request shapes of the event-type routes: the query of GET /event_type, POST and PATCH bodies."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.common.api.edge import refuse, validated
from services.common.api.json_values import NO_NUL, contains_nul, nullable_json_object
from services.common.event_schemas import MAX_SCHEMA_BYTES, SchemaError, check_schema
from services.common.web import BadRequest

from .validation import RequestBody, no_default

# The name is the event's `type` on the wire (SPEC §8); the migration checks it too.
NAME_PATTERN = "^[A-Za-z0-9_.-]{1,100}$"
MAX_DESCRIPTION_CHARS = 1000
SCHEMA_HELP = (
    "A JSON Schema (draft 2020-12) every payload of this type must satisfy; null is none. "
    "`$ref` must point inside the schema; formats are annotations only. A schema that is "
    f"not valid JSON Schema, or over {MAX_SCHEMA_BYTES} bytes as JSON, is a 400 naming "
    "`schema`."
)


def check_event_schema(value: Any) -> Any:
    """null is no schema; anything else must be a usable draft 2020-12 schema."""
    if value is None:
        return None
    if isinstance(value, dict) and contains_nul(value):
        raise refuse("schema must not contain the NUL character (\\u0000)")
    try:
        return check_schema(value)
    except SchemaError as exc:
        raise refuse(str(exc)) from None


# The example the document shows for a type's schema.
SCHEMA_EXAMPLE = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {"invoice_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}},
}
EventSchema = Annotated[
    dict[str, Any] | None,
    BeforeValidator(check_event_schema),
    nullable_json_object(SCHEMA_HELP, SCHEMA_EXAMPLE, {"pattern": NO_NUL}),
]
Description = Annotated[str, Field(strict=True, max_length=MAX_DESCRIPTION_CHARS, pattern=NO_NUL)]


class EventTypeQuery(BaseModel):
    name: str | None = Field(
        None,
        pattern=NO_NUL,
        description="Only the event type of this name, e.g. `upload file`.",
    )


class EventTypeCreate(RequestBody):
    """POST /event_type."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "invoice.paid",
                    "description": "An invoice was paid",
                    "schema": {
                        "type": "object",
                        "required": ["invoice_id"],
                        "properties": {"invoice_id": {"type": "string"}},
                    },
                }
            ]
        }
    )

    name: str = Field(
        strict=True,
        pattern=NAME_PATTERN,
        description="Unique; the `type` of its events on the wire.",
        examples=["invoice.paid"],
    )
    description: Description = ""
    # `schema` is a BaseModel attribute, so the field has another name in Python.
    payload_schema: EventSchema = Field(None, alias="schema")


class EventTypePatch(RequestBody):
    """PATCH /event_type/{event_type_id}: any of these. `schema: null` removes the schema;
    `archived: true` refuses new events and new webhooks of the type (existing webhooks
    keep it)."""

    model_config = ConfigDict(
        json_schema_extra={"minProperties": 1, "examples": [{"archived": True}]}
    )

    description: Description = Field(None, json_schema_extra=no_default)  # type: ignore[assignment]
    payload_schema: EventSchema = Field(None, alias="schema")
    archived: bool = Field(None, strict=True, json_schema_extra=no_default)  # type: ignore[assignment]


def parse_event_type_patch(body: dict[str, Any]) -> dict[str, Any]:
    """The fields a PATCH sets, by column name (`schema` may be None: remove it)."""
    if not body:
        raise BadRequest("nothing to update: send at least one of description, schema, archived")
    patch = validated(EventTypePatch, body)
    columns = {"payload_schema": "schema"}
    return {columns.get(name, name): getattr(patch, name) for name in patch.model_fields_set}
