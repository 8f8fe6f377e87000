"""Any JSON value PostgreSQL's jsonb can store (no NUL in a string or key): the check and its
JSON schema, for every body that carries a caller's JSON (payloads, schemas, filters)."""

from __future__ import annotations

from typing import Any

from pydantic import WithJsonSchema

NO_NUL = "^[^\\x00]*$"
# The document carries JSON_VALUE under this name (it refers to itself).
JSON_VALUE_REF = "#/components/schemas/JsonValue"
# Any JSON value without a NUL in its strings or keys (jsonb cannot store one). No `type` and
# no union: `pattern` holds strings only and `items` arrays only, and the object's keywords
# sit under `if` so that generators that read `additionalProperties` as "an object"
# (openapi-typescript) or cannot follow a recursive union (openapi-python-client) see any
# JSON value, which it is, while validators (schemathesis) still see every constraint.
JSON_VALUE = {
    "description": "Any JSON value (string, number, boolean, null, array or object); no "
    "string or key in it may hold a NUL (\\u0000).",
    "pattern": NO_NUL,
    "items": {"$ref": JSON_VALUE_REF},
    "if": {"type": "object"},
    "then": {
        "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"$ref": JSON_VALUE_REF},
    },
}


def contains_nul(value: Any) -> bool:
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


# A JSON object of such values (the document's JsonValue is registered by the OpenAPI builder).
JSON_OBJECT = {
    "type": "object",
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": JSON_VALUE_REF},
}


def integral_number(value: Any) -> Any:
    """JSON has one number type, so `7.0` is the integer 7 (as JSON Schema counts it); the
    strict int after this still refuses booleans, strings and 1.5, NaN or infinity."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def nullable_object(description: str, example: dict[str, Any], **schema: Any) -> dict[str, Any]:
    """The document's schema of an optional JSON object field (null is none)."""
    return {"type": ["object", "null"], "description": description, **schema, "examples": [example]}


def nullable_json_object(
    description: str, example: dict[str, Any], property_names: dict[str, Any]
) -> WithJsonSchema:
    """The document's schema of an optional object of JSON values (null is none), for an
    `Annotated` field: payload schemas, filters."""
    return WithJsonSchema(
        nullable_object(
            description,
            example,
            propertyNames=property_names,
            additionalProperties={"$ref": JSON_VALUE_REF},
        )
    )
