"""The bench's load client: HTTP/1.1 keep-alive connections to 127.0.0.1 on plain asyncio,
requests prebuilt as bytes, and a reader for just what the gateway, the services and the
receivers answer (a status line, headers, a Content-Length body).

It costs a few tens of microseconds of CPU a request where aiohttp's client costs some
hundreds, and that CPU is the machine's: the bench measures the system beside it. An answer
this client cannot read (chunked, or without a length) fails loudly rather than being
guessed at.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import cast

HOST = "127.0.0.1"
# As the aiohttp session the bench used before: no request waits longer than this.
TIMEOUT_SECONDS = 120.0
# Answers that never carry a body (RFC 9110), whatever their headers say.
BODILESS = frozenset({204, 304})


class ProtocolError(Exception):
    """An answer this client does not read, or a connection that broke mid-answer."""


def request_head(
    method: str, port: int, path: str, headers: Mapping[str, str] | None = None
) -> bytes:
    """The request line and headers, each line ended, without Content-Length."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1")


def with_body(head: bytes, body: bytes) -> bytes:
    """A whole request: a head from `request_head`, then the body's length and the body."""
    return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)


def build_request(
    method: str, port: int, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> bytes:
    """One request as the bytes to write: request line, headers and body."""
    head = request_head(method, port, path, headers)
    if body or method in ("POST", "PUT", "PATCH"):
        return with_body(head, body)
    return head + b"\r\n"


def header_value(lowered: bytes, name: bytes) -> bytes | None:
    """A header's value from a head in lower case (`name` with its colon), or None."""
    at = lowered.find(b"\r\n" + name)
    if at < 0:
        return None
    end = lowered.find(b"\r\n", at + 2)
    return lowered[at + 2 + len(name) : end if end >= 0 else None].strip()


def read_head(head: bytes) -> tuple[int, int, bool]:
    """(status, body length, whether the server closes) from a status line and headers."""
    if not head.startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x answer: {head[:40]!r}")
    status = int(head[9:12])
    lowered = head.lower()
    connection = header_value(lowered, b"connection:")
    # Without the header, HTTP/1.1 keeps the connection open and HTTP/1.0 closes it.
    close = head[7:8] == b"0" if connection is None else b"close" in connection
    if status in BODILESS:
        return status, 0, close
    length = header_value(lowered, b"content-length:")
    if length is None:  # chunked, or up to the close: neither is read here
        what = "Transfer-Encoding" if b"\r\ntransfer-encoding:" in lowered else "no length"
        raise ProtocolError(f"a {status} answer with {what}, which this client refuses")
    return status, int(length), close


class _Wire(asyncio.Protocol):
    """One TCP connection: writes a request, completes its waiter with the answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.head: tuple[int, int, bool] | None = None
        self.body_at = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self.take_answer()
        except (ProtocolError, ValueError) as exc:
            self.fail(exc)

    def take_answer(self) -> None:
        buffer = self.buffer
        if self.head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = read_head(bytes(buffer[:end]))
            self.body_at = end + 4
        status, length, close = self.head
        end = self.body_at + length
        if len(buffer) < end:
            return
        body = bytes(buffer[self.body_at : end])
        del buffer[:end]
        self.head = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            raise ProtocolError(f"a {status} answer to no request")
        if buffer:
            raise ProtocolError(f"bytes after a {status} answer, before any request")
        if close:  # the next request opens a new connection
            self.closed = True
            assert self.transport is not None
            self.transport.close()
        waiter.set_result((status, body))

    def fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(
                ProtocolError(f"the server closed the connection before answering ({exc!r})")
            )

    def timed_out(self) -> None:
        self.fail(TimeoutError(f"no answer within {TIMEOUT_SECONDS:g} s"))


class Connection:
    """A keep-alive connection to one port of 127.0.0.1, opened again when the server
    closes it after an answer (nginx does after keepalive_requests)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.wire: _Wire | None = None
        self.loop = asyncio.get_running_loop()

    async def open(self) -> None:
        _, self.wire = await self.loop.create_connection(_Wire, HOST, self.port)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Write one prebuilt request; (status, body) of its answer."""
        wire = self.wire
        if wire is None or wire.closed:
            await self.open()
            wire = self.wire
        assert wire is not None and wire.transport is not None
        if wire.waiter is not None:
            raise RuntimeError("a request is already waiting on this connection")
        waiter: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        wire.waiter = waiter
        timer = self.loop.call_later(TIMEOUT_SECONDS, wire.timed_out)
        wire.transport.write(request)
        try:
            return await waiter
        finally:
            timer.cancel()
            wire.waiter = None

    def close(self) -> None:
        if self.wire is not None and self.wire.transport is not None:
            self.wire.transport.close()
        self.wire = None


@asynccontextmanager
async def connections(port: int, count: int) -> AsyncIterator[list[Connection]]:
    """`count` connections, open before the caller starts its clock, closed after."""
    opened = [Connection(port) for _ in range(count)]
    try:
        await asyncio.gather(*(connection.open() for connection in opened))
        yield opened
    finally:
        for connection in opened:
            connection.close()
