"""Event type schemas: checking a schema, validating payloads with a JSON pointer, sampling."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from services.common.event_schemas import (
    MAX_REASON_LENGTH,
    MAX_SCHEMA_BYTES,
    VALIDATOR_CACHE_SIZE,
    PayloadError,
    PayloadInvalid,
    SchemaError,
    check_schema,
    json_pointer,
    payload_validator,
    sample_payload,
)

INVOICE_PAID: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["invoice_id", "customer", "amount", "lines"],
    "properties": {
        "invoice_id": {"type": "string", "minLength": 3},
        "customer": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer", "minimum": 18},
                "country": {"enum": ["NL", "DE", "FR"]},
            },
        },
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"const": "EUR"},
        "paid_at": {"type": "string", "format": "date-time"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

VALID_INVOICE: dict[str, Any] = {
    "invoice_id": "inv_1",
    "customer": {"id": 7, "email": "ann@example.com", "age": 42, "country": "NL"},
    "amount": 19.5,
    "currency": "EUR",
    "paid_at": "2026-01-01T00:00:00Z",
    "lines": [{"sku": "X-1", "qty": 2}],
}


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**VALID_INVOICE, **changes}


# --- check_schema -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object"},
        INVOICE_PAID,
        {"$schema": "https://json-schema.org/draft/2020-12/schema#", "type": "object"},
        {"$defs": {"id": {"type": "integer"}}, "properties": {"id": {"$ref": "#/$defs/id"}}},
        {"properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}},
        {"type": "object", "properties": {"tree": {"$ref": "#"}}},
    ],
)
def test_good_schemas_are_returned_as_given(schema: dict[str, Any]) -> None:
    assert check_schema(schema) is schema


BAD_SCHEMAS: list[tuple[Any, list[str]]] = [
    ([], ["schema must be a JSON object"]),
    ("object", ["schema must be a JSON object"]),
    (True, ["schema must be a JSON object"]),
    ({"type": "strin"}, ["schema at /type", "strin"]),
    ({"minimum": "x"}, ["schema at /minimum", "number"]),
    ({"required": "a"}, ["schema at /required", "array"]),
    ({"properties": {"a": {"type": "integer", "minimum": "1"}}}, ["/properties/a/minimum"]),
    ({"properties": {"a": {"minLength": -1}}}, ["/properties/a/minLength"]),
    ({"pattern": "("}, ["schema", "regex"]),
    ({"$schema": "http://json-schema.org/draft-07/schema#"}, ["schema", "$schema", "2020-12"]),
    ({"$ref": "https://example.com/schema.json"}, ["schema", "$ref", "inside the schema"]),
    ({"properties": {"a": {"$ref": "other.json#/x"}}}, ["schema", "other.json"]),
    ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, ["schema", "/$defs/missing"]),
    ({"description": "x" * MAX_SCHEMA_BYTES}, ["schema", f"{MAX_SCHEMA_BYTES} bytes"]),
]


@pytest.mark.parametrize(("raw", "words"), BAD_SCHEMAS)
def test_bad_schemas_say_what_is_wrong(raw: Any, words: list[str]) -> None:
    with pytest.raises(SchemaError) as raised:
        check_schema(raw)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert message.startswith("schema")
    for word in words:
        assert word in message


# --- payload validation ---------------------------------------------------------------------


def test_a_valid_payload_has_no_error() -> None:
    validator = payload_validator(INVOICE_PAID)
    assert validator.first_error(VALID_INVOICE) is None
    validator.validate(VALID_INVOICE)


@pytest.mark.parametrize(
    ("payload", "pointer", "words"),
    [
        (with_changes(customer={"id": 7, "email": "a@b", "age": 17}), "/customer/age", ["18"]),
        (
            with_changes(lines=[{"sku": "a", "qty": 1}, {"sku": "b", "qty": "2"}]),
            "/lines/1/qty",
            [],
        ),
        (with_changes(lines=[]), "/lines", []),
        (with_changes(amount=0), "/amount", ["0"]),
        (with_changes(currency="USD"), "/currency", ["EUR"]),
        (
            with_changes(customer={"id": 7, "email": "a@b", "country": "BE"}),
            "/customer/country",
            [],
        ),
        ({k: v for k, v in VALID_INVOICE.items() if k != "customer"}, "", ["customer", "required"]),
        (with_changes(extra=1), "", ["extra"]),
        (with_changes(lines=[{"sku": "a", "qty": 1, "x": 1}]), "/lines/0", ["x"]),
        ([VALID_INVOICE], "", ["object"]),
    ],
)
def test_the_first_failure_is_named_by_json_pointer(
    payload: Any, pointer: str, words: list[str]
) -> None:
    validator = payload_validator(INVOICE_PAID)
    error = validator.first_error(payload)
    assert error is not None
    assert error.pointer == pointer
    for word in words:
        assert word in error.reason
    with pytest.raises(PayloadInvalid) as raised:
        validator.validate(payload)
    assert raised.value.pointer == pointer
    assert isinstance(raised.value, ValueError)
    expected_start = f"payload at {pointer}: " if pointer else "payload: "
    assert str(raised.value).startswith(expected_start)
    assert jsonschema.Draft202012Validator(INVOICE_PAID).is_valid(payload) is False


def test_pointers_escape_slash_and_tilde() -> None:
    assert json_pointer([]) == ""
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    validator = payload_validator(
        {"properties": {"a/b": {"properties": {"c~d": {"type": "string"}}}}}
    )
    assert validator.first_error({"a/b": {"c~d": 1}}) == PayloadError(
        "/a~1b/c~0d", '1 is not of type "string"'
    )


def test_a_huge_failing_value_gives_a_bounded_reason() -> None:
    validator = payload_validator({"properties": {"blob": {"type": "string"}}})
    error = validator.first_error({"blob": list(range(10_000))})
    assert error is not None and error.pointer == "/blob"
    assert len(error.reason) <= MAX_REASON_LENGTH


def test_formats_are_annotations_not_assertions() -> None:
    validator = payload_validator(
        {"properties": {"when": {"type": "string", "format": "date-time"}}}
    )
    assert validator.first_error({"when": "not a date"}) is None


def test_a_catastrophic_pattern_does_not_hang() -> None:
    # Backtracking regex engines take ages on this; jsonschema-rs does not backtrack.
    validator = payload_validator({"properties": {"p": {"type": "string", "pattern": "^(a+)+$"}}})
    error = validator.first_error({"p": "a" * 64 + "!"})
    assert error is not None and error.pointer == "/p"


def test_validators_are_cached_by_schema_text() -> None:
    first = payload_validator({"type": "object", "required": ["a"]})
    reordered = payload_validator({"required": ["a"], "type": "object"})
    other = payload_validator({"type": "object", "required": ["b"]})
    assert first is reordered
    assert other is not first
    assert VALIDATOR_CACHE_SIZE >= 16


# --- sample payloads ------------------------------------------------------------------------

REALISTIC_SCHEMAS: list[dict[str, Any]] = [
    INVOICE_PAID,
    {
        "type": "object",
        "required": ["user_id", "email", "created_at"],
        "properties": {
            "user_id": {"type": "string", "format": "uuid"},
            "email": {"type": "string", "format": "email"},
            "created_at": {"type": "string", "format": "date-time"},
            "plan": {"type": "string", "enum": ["free", "pro"]},
            "referrer": {"type": ["string", "null"], "format": "uri"},
            "marketing_opt_in": {"type": "boolean"},
        },
    },
    {
        "type": "object",
        "required": ["build", "status", "duration_ms"],
        "properties": {
            "build": {"type": "integer", "minimum": 1000, "multipleOf": 7},
            "status": {"type": "string", "const": "finished"},
            "duration_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
            "artifacts": {
                "type": "array",
                "minItems": 2,
                "maxItems": 3,
                "items": {"type": "string", "format": "uri", "maxLength": 40},
            },
            "score": {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": -5},
        },
        "additionalProperties": False,
    },
    {
        "$defs": {
            "money": {
                "type": "object",
                "required": ["amount", "currency"],
                "properties": {
                    "amount": {"type": "integer", "minimum": 1},
                    "currency": {"type": "string", "minLength": 3, "maxLength": 3},
                },
            }
        },
        "type": "object",
        "required": ["total", "refunds"],
        "properties": {
            "total": {"$ref": "#/$defs/money"},
            "refunds": {"type": "array", "items": {"$ref": "#/$defs/money"}},
            "coordinates": {
                "type": "array",
                "prefixItems": [{"type": "number"}, {"type": "number"}],
            },
        },
    },
    {
        "type": "object",
        "required": ["kind"],
        "allOf": [{"properties": {"kind": {"type": "string"}}}, {"required": ["at"]}],
        "properties": {"at": {"type": "string", "format": "date"}},
        "oneOf": [
            {"properties": {"kind": {"const": "a"}}},
            {"properties": {"kind": {"const": "b"}}},
        ],
    },
    {"type": "object", "properties": {"note": {"type": "string", "default": "hi", "minLength": 1}}},
    {
        "type": "object",
        "properties": {"n": {"type": "number", "examples": [42]}},
        "required": ["n"],
    },
    {"type": "object", "minProperties": 0},
    {"type": "object", "properties": {"tree": {"$ref": "#"}, "leaf": {"type": "integer"}}},
    {
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^inv_[0-9]+$", "examples": ["inv_1"]}},
    },
]


@pytest.mark.parametrize("schema", REALISTIC_SCHEMAS)
def test_samples_validate(schema: dict[str, Any]) -> None:
    check_schema(schema)
    sample = sample_payload(schema)
    assert isinstance(sample, dict)
    assert payload_validator(schema).first_error(sample) is None
    # The reference implementation agrees.
    jsonschema.Draft202012Validator(schema).validate(sample)


def test_samples_show_every_declared_property_when_they_can() -> None:
    sample = sample_payload(INVOICE_PAID)
    assert set(sample) == set(INVOICE_PAID["properties"])
    assert sample["currency"] == "EUR"
    assert sample["paid_at"] == "2026-01-01T12:00:00Z"
    assert sample["customer"]["email"] == "user@example.com"
    assert sample["amount"] > 0 and len(sample["lines"]) == 1


def test_without_a_schema_the_sample_is_the_test_flag() -> None:
    assert sample_payload(None) == {"test": True}
    assert sample_payload({}) == {"test": True}
    assert sample_payload({"type": "object"}) == {"test": True}
