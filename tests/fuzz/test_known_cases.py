"""The known edge cases and hosts, through an HTTP client."""

from __future__ import annotations

import json

import pytest

from harness.stack import Stack, StackOptions
from tests.fuzz.cases import EDGE_CASES, PRIVATE_OR_INVALID_URLS
from tests.fuzz.gateway import (
    TOLERATED_WARNINGS,
    check_envelope,
    check_registration,
    check_upload,
    send,
    target_webhook,
)
from tests.fuzz.strategies import VALID_BASE

pytestmark = TOLERATED_WARNINGS


@pytest.mark.parametrize(("method", "target", "content_type", "body", "statuses"), EDGE_CASES)
async def test_known_edge_cases(
    stack: Stack,
    method: str,
    target: str,
    content_type: str | None,
    body: bytes | None,
    statuses: set[int],
) -> None:
    if target == "{upload}":
        target = f"/upload_file/webhook_id/{await target_webhook(stack)}"
    if target.startswith("/upload_file/"):
        answer, _ = await check_upload(stack, target, body or b"", content_type)
    elif target == "/webhook/register":
        answer = await check_registration(stack, body or b"", content_type)
    else:
        answer = await send(stack, method, target, data=body)
        check_envelope(answer)
    assert answer.status in statuses, f"expected one of {sorted(statuses)}: {answer}"


@pytest.mark.parametrize(
    "stack_options", [StackOptions(registration_allow_private=False, with_dispatcher=False)]
)
@pytest.mark.parametrize("url", PRIVATE_OR_INVALID_URLS)
async def test_known_urls_with_private_urls_refused(stack: Stack, url: str) -> None:
    fields = {**VALID_BASE, "url": url}
    answer = await check_registration(stack, json.dumps(fields).encode(), "application/json")
    assert answer.status == 400, f"a private or invalid host must be refused: {answer}"
