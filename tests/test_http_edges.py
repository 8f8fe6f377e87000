"""Answers made before our handlers run (nginx's own, aiohttp's parser's) are envelopes too."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

import pytest

from harness.stack import Stack

GATEWAY_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


async def exchange(base_url: str, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send one raw request (`\\n` line ends) and read the answer until the peer closes."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), 30)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body[: int(headers["content-length"])]


def assert_envelope(headers: dict[str, str], body: bytes, message: str) -> None:
    assert headers["content-type"].startswith("application/json"), headers
    assert json.loads(body) == {"message": message, "data": {}, "error": True}


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "FOO", "PROPFIND"])
async def test_every_405_of_the_gateway_names_the_allowed_methods(
    stack: Stack, method: str
) -> None:
    status, headers, body = await exchange(
        stack.gateway_url, f"{method} /event_type HTTP/1.1\nHost: x\nConnection: close\n"
    )
    assert status == 405
    assert headers["allow"] == GATEWAY_METHODS
    assert headers["x-request-id"]
    assert_envelope(headers, body, "method not allowed")


IDEMPOTENCY_KEY_WITH_A_CONTROL_CHARACTER = (
    "POST /upload_file/webhook_id/6f1c1d0e-0000-4000-8000-000000000000 HTTP/1.1\n"
    "Host: x\nIdempotency-Key: invoice\x01-2026\nContent-Length: 0\nConnection: close\n"
)


@pytest.mark.parametrize("target", ["gateway", "upload service"])
async def test_a_header_the_http_parser_refuses_gets_our_envelope(
    stack: Stack, target: str
) -> None:
    base_url = stack.gateway_url if target == "gateway" else stack.upload_url
    status, headers, body = await exchange(base_url, IDEMPOTENCY_KEY_WITH_A_CONTROL_CHARACTER)
    assert status == 400
    assert_envelope(headers, body, "malformed HTTP request")


async def test_a_broken_request_line_to_a_service_gets_our_envelope(stack: Stack) -> None:
    status, headers, body = await exchange(
        stack.registration_url, "GET /event_type HTTP/1.1 extra\nHost: x\nConnection: close\n"
    )
    assert status == 400
    assert_envelope(headers, body, "malformed HTTP request")
