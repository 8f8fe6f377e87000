"""HTTP over a bare socket, for what a client library will not send: huge or broken heads,
slow clients, bodies cut short and malformed chunked encoding."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from harness.stack import Stack
from tests.fuzz.gateway import REQUEST_TIMEOUT_SECONDS, Answer, check_envelope


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def __str__(self) -> str:
        return f"{self.status} {self.headers.get('content-type')!r} {self.body[:300]!r}"


def gateway_address(stack: Stack) -> tuple[str, int]:
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    return host, int(port)


def parse_raw(raw: bytes) -> RawAnswer | None:
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = decoded
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawAnswer(int(status_line.split()[1]), headers, body)


async def raw_exchange(
    stack: Stack, pieces: list[bytes], *, pause: float = 0.0, half_close: bool = False
) -> RawAnswer | None:
    """Send the pieces (pausing between them), then read until the gateway closes."""
    reader, writer = await asyncio.open_connection(*gateway_address(stack))
    try:
        started = time.monotonic()
        for piece in pieces:
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                break  # the gateway may answer and close before it has it all
            if pause:
                await asyncio.sleep(pause)
        if half_close and not writer.is_closing():
            writer.write_eof()
        remaining = REQUEST_TIMEOUT_SECONDS - (time.monotonic() - started)
        try:
            raw = await asyncio.wait_for(reader.read(-1), max(remaining, 1.0))
        except ConnectionResetError:
            raw = b""
        except TimeoutError:
            raise AssertionError("the gateway neither answered nor closed in time") from None
        return parse_raw(raw)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def check_raw_envelope(answer: RawAnswer | None, statuses: set[int]) -> None:
    assert answer is not None, "the gateway closed the connection without an answer"
    assert answer.status in statuses, f"expected one of {sorted(statuses)}: {answer}"
    content_type = answer.headers.get("content-type", "").split(";")[0]
    check_envelope(
        Answer("RAW", "", answer.status, content_type, answer.body),
        protocol_5xx=frozenset(statuses) & {501, 505},
    )


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body


def upload_head(webhook_id: str, extra: str) -> str:
    return (
        f"POST /upload_file/webhook_id/{webhook_id} HTTP/1.1\nHost: x\n"
        f"Content-Type: multipart/form-data; boundary=cut\n{extra}Connection: close\n"
    )
