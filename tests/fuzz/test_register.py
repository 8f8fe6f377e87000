"""POST /webhook/register with any body, fields, headers, payload and URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.stack import Stack, StackOptions
from tests.fuzz.gateway import TOLERATED_WARNINGS, check_envelope, check_registration, send
from tests.fuzz.strategies import (
    FUZZ,
    VALID_BASE,
    content_types,
    header_names,
    json_values,
    registration_objects,
    urls,
    valid_registrations,
)

pytestmark = TOLERATED_WARNINGS


@FUZZ
@given(value=json_values)
async def test_register_any_json_value(stack: Stack, value: Any) -> None:
    await check_registration(stack, json.dumps(value).encode(), "application/json")


@FUZZ
@given(fields=registration_objects())
async def test_register_objects_with_any_field_values(stack: Stack, fields: dict[str, Any]) -> None:
    await check_registration(stack, json.dumps(fields).encode(), "application/json")


@FUZZ
@given(
    headers=st.none() | st.dictionaries(header_names, st.text(max_size=20) | json_values),
    payload=st.none()
    | st.dictionaries(
        st.text(max_size=8) | st.sampled_from(["\x00", "key"]), json_values, max_size=4
    ),
)
async def test_register_any_custom_headers_and_payload(
    stack: Stack, headers: Any, payload: Any
) -> None:
    """Everything else valid: the object fields alone decide, and never with a 5xx."""
    fields = {**VALID_BASE, "custom_headers": headers, "custom_payload": payload}
    answer = await check_registration(stack, json.dumps(fields).encode(), "application/json")
    if answer.status == 200:
        data = json.loads(answer.body)["data"]
        assert data["custom_headers"] == (headers or {})
        assert data["custom_payload"] == (payload or {})


@FUZZ
@given(
    raw=st.binary(max_size=300) | st.text(max_size=100).map(str.encode), content_type=content_types
)
async def test_register_any_bytes_any_content_type(
    stack: Stack, raw: bytes, content_type: str | None
) -> None:
    await check_registration(stack, raw, content_type)


@FUZZ
@given(fields=valid_registrations)
async def test_register_valid_bodies_are_accepted(stack: Stack, fields: dict[str, Any]) -> None:
    answer = await send(
        stack,
        "POST",
        "/webhook/register",
        data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json"},
    )
    body = check_envelope(answer)
    assert answer.status == 200, f"a valid registration was refused: {answer}"
    data = body["data"]
    for name in ("user_id", "url", "event_type_id"):
        assert data[name] == fields[name]
    assert data["custom_headers"] == fields.get("custom_headers", {})
    assert data["custom_payload"] == fields.get("custom_payload", {})


@FUZZ
@pytest.mark.parametrize(
    "stack_options", [StackOptions(registration_allow_private=False, with_dispatcher=False)]
)
@given(url=urls())
async def test_register_any_url_with_private_urls_refused(stack: Stack, url: str) -> None:
    """The production default: every URL's host is judged (literals, names, DNS) without a 5xx."""
    fields = {**VALID_BASE, "url": url}
    await check_registration(stack, json.dumps(fields).encode(), "application/json")
