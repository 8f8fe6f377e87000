"""Broken, cut-short and slow requests over a bare socket."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from harness.stack import UPLOAD_EVENT_TYPE_ID, Stack
from tests.fuzz.cases import BAD_HEADS, MALFORMED_CHUNKS, PART_HEAD, simple_form
from tests.fuzz.gateway import (
    REQUEST_TIMEOUT_SECONDS,
    TOLERATED_WARNINGS,
    assert_nothing_left,
    files_under,
    target_webhook,
    upload_count,
)
from tests.fuzz.rawhttp import (
    check_raw_envelope,
    gateway_address,
    parse_raw,
    raw_exchange,
    request,
    upload_head,
)

pytestmark = TOLERATED_WARNINGS


@pytest.mark.parametrize(("raw", "statuses"), BAD_HEADS)
async def test_broken_requests_get_an_envelope(
    stack: Stack, raw: bytes, statuses: set[int]
) -> None:
    check_raw_envelope(await raw_exchange(stack, [raw]), statuses)


@pytest.mark.parametrize("chunks", MALFORMED_CHUNKS)
async def test_malformed_chunked_upload(stack: Stack, chunks: bytes) -> None:
    """Unbuffered at the gateway: the service has started reading when the body turns bad."""
    webhook_id = await target_webhook(stack)
    rows = await upload_count(stack)
    head = request(upload_head(webhook_id, "Transfer-Encoding: chunked\n"))
    answer = await raw_exchange(stack, [head, chunks], pause=0.2)
    check_raw_envelope(answer, {400})
    await assert_nothing_left(stack, rows)


@pytest.mark.parametrize("half_close", [False, True], ids=["close", "half-close"])
async def test_truncated_upload_leaves_nothing(stack: Stack, half_close: bool) -> None:
    """Content-Length promises more than arrives; the client then goes away (or stops sending)."""
    webhook_id = await target_webhook(stack)
    rows = await upload_count(stack)
    sent = PART_HEAD + b"z" * 1000
    head = request(upload_head(webhook_id, f"Content-Length: {len(sent) + 5000}\n"))
    reader, writer = await asyncio.open_connection(*gateway_address(stack))
    writer.write(head + sent)
    await writer.drain()
    for _ in range(100):  # until the service has started writing the file
        if files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.02)
    assert files_under(stack.upload_dir), "the upload never started"
    if half_close:
        writer.write_eof()
        # The gateway sees the end of the body before its promised length: an answer or a close.
        raw = await asyncio.wait_for(reader.read(-1), REQUEST_TIMEOUT_SECONDS)
        answer = parse_raw(raw)
        if answer is not None:
            check_raw_envelope(answer, {400, 408})
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    await assert_nothing_left(stack, rows)
    # The service is still fine afterwards.
    await stack.upload(webhook_id)


async def test_slow_client_sending_byte_by_byte(stack: Stack) -> None:
    """A whole request trickled out over about two seconds still gets its answer."""
    body = json.dumps(
        {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "https://example.com/slow"}
    ).encode()
    raw = request(
        "POST /webhook/register HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        f"Content-Length: {len(body)}\nConnection: close\n",
        body,
    )
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    answer = await raw_exchange(stack, pieces, pause=2.0 / len(pieces))
    check_raw_envelope(answer, {200})


async def test_slow_upload_byte_by_byte(stack: Stack) -> None:
    webhook_id = await target_webhook(stack)
    body, content_type = simple_form(b"slowly")
    raw = request(
        f"POST /upload_file/webhook_id/{webhook_id} HTTP/1.1\nHost: x\n"
        f"Content-Type: {content_type}\nContent-Length: {len(body)}\nConnection: close\n",
        body,
    )
    pieces = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    answer = await raw_exchange(stack, pieces, pause=2.0 / len(pieces))
    check_raw_envelope(answer, {200})
    assert answer is not None and json.loads(answer.body)["data"]["size"] == len(b"slowly")
