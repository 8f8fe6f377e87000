"""A webhook receiver for the benchmark, in its own process so it never shares the load
client's CPU time: `python -m bench.receiver --port N --mode fast|slow|dead`.

It records when each delivery first arrived (an upload's by its upload id, any other
event's by its delivery id), counts duplicates and the most requests open at once, and
serves those figures on GET /stats (POST /reset clears them).

It is an asyncio.Protocol with a minimal HTTP/1.1 reader (Content-Length bodies,
keep-alive), not a web framework: on a 2-core machine its CPU is taken from the system
being measured, and a real endpoint would not run there at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from typing import cast

import orjson
import uvloop

# Larger request bodies are refused (aiohttp's client_max_size, as this receiver had).
MAX_BODY_BYTES = 16 * 1024**2
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"
NO_CONTENT_CLOSE = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


class Unreadable(Exception):
    """A request this reader does not take: answered with `status`, and the connection closed."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Tally:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.requests = 0
        self.duplicates = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_arrival: float | None = None

    def figures(self, summary: bool) -> bytes:
        figures: dict[str, object] = {
            "requests": self.requests,
            "duplicates": self.duplicates,
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
            "delivered": len(self.arrivals),
            "last_arrival": self.last_arrival,
        }
        # ?summary=1 while polling: the counts, without a figure per delivery.
        if not summary:
            figures.update(arrivals=self.arrivals, latencies_ms=self.latencies)
        return orjson.dumps(figures)

    def arrived(self, head: bytes, lowered: bytes, body: bytes, now: float) -> None:
        self.requests += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        found = delivery_key(body, head, lowered)
        if found is None:
            return  # the direct-POST ceiling sends multipart, not events
        key, origin = found
        if key in self.arrivals:
            self.duplicates += 1
            return
        self.arrivals[key] = now
        self.last_arrival = now
        # Upload recorded (server clock) to delivery received, same machine.
        self.latencies[key] = (now - origin) * 1000


def header_value(lowered: bytes, name: bytes, head: bytes | None = None) -> bytes | None:
    """A header's value, found in the head in lower case (`name` with its colon), taken
    from `head` when given (as sent) or else from the lower-case one; None if absent."""
    at = lowered.find(b"\r\n" + name)
    if at < 0:
        return None
    end = lowered.find(b"\r\n", at + 2)
    return (head or lowered)[at + 2 + len(name) : end if end >= 0 else None].strip()


def delivery_key(body: bytes, head: bytes, lowered: bytes) -> tuple[str, float] | None:
    """What a delivery counts by and the epoch time its latency runs from, or None.

    An upload's delivery counts by its upload id, any other by its delivery id (the
    webhook-id header); latency runs from the upload's (or event's) time on the server's
    clock.
    """
    try:
        event = orjson.loads(body)
        data = event["data"]
        key = data.get("upload_id") or delivery_id(head, lowered)
        if key is None:
            return None
        origin = data.get("uploaded_at") or event["timestamp"]
        return str(key), datetime.fromisoformat(origin.replace("Z", "+00:00")).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def delivery_id(head: bytes, lowered: bytes) -> str | None:
    found = header_value(lowered, b"webhook-id:", head)
    return None if found is None else found.decode("latin-1")


def answer(status: str, body: bytes, close: bool) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return (head + ("\r\nConnection: close" if close else "") + "\r\n\r\n").encode() + body


def closes(lowered: bytes) -> bool:
    """Whether the client asks to close after the answer (HTTP/1.0 does unless it says
    keep-alive), from its request line and headers in lower case."""
    line_end = lowered.find(b"\r\n")
    old = lowered.endswith(b" http/1.0", 0, line_end if line_end >= 0 else len(lowered))
    if b"\r\nconnection:" not in lowered:
        return old
    connection = header_value(lowered, b"connection:") or b""
    return b"close" in connection or (old and b"keep-alive" not in connection)


def body_length(lowered: bytes) -> int:
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:  # no body, or a chunked one (a sender gives one or the other, RFC 9112)
        if b"\r\ntransfer-encoding:" in lowered:
            raise Unreadable(
                "501 Not Implemented",
                "a chunked request body: this receiver reads Content-Length only",
            )
        return 0
    end = lowered.find(b"\r\n", at + 17)
    size = int(lowered[at + 17 : end if end >= 0 else None])
    if size > MAX_BODY_BYTES:
        raise Unreadable("413 Request Entity Too Large", f"a request body of {size} bytes")
    return size


class Receiver:
    """The receiver's behaviour: its mode, its tally and what each request gets."""

    def __init__(self, mode: str, delay: float) -> None:
        self.fast = mode == "fast"
        self.delay = 3600.0 if mode == "dead" else delay
        self.tally = Tally()
        self.loop = asyncio.get_running_loop()

    def serve(self, connection: HttpConnection, head: bytes, lowered: bytes, body: bytes) -> None:
        """Answers now, or (slow and dead) after the delay, holding the connection."""
        close = connection.close
        if not head.startswith(b"POST "):
            self.serve_other(connection, head, close)
        elif head.startswith((b"POST /reset ", b"POST /reset?")):
            self.tally.reset()
            connection.write(NO_CONTENT_CLOSE if close else NO_CONTENT, close)
        else:
            self.tally.arrived(head, lowered, body, time.time())
            if self.fast:
                self.done(connection, close)
            else:
                connection.busy = True
                self.loop.call_later(self.delay, self.done_later, connection, close)

    def serve_other(self, connection: HttpConnection, head: bytes, close: bool) -> None:
        path, _, query = head.partition(b"\r\n")[0].split(b" ")[1].partition(b"?")
        if head.startswith(b"GET ") and path == b"/stats":
            summary = any(part.split(b"=", 1)[0] == b"summary" for part in query.split(b"&"))
            connection.write(answer("200 OK", self.tally.figures(summary), close), close)
        else:
            connection.write(answer("405 Method Not Allowed", b"", close), close)

    def done(self, connection: HttpConnection, close: bool) -> None:
        # Counted as answered even if the client left meanwhile (as aiohttp's handlers,
        # which a client's disconnect does not cancel).
        self.tally.in_flight -= 1
        connection.write(NO_CONTENT_CLOSE if close else NO_CONTENT, close)

    def done_later(self, connection: HttpConnection, close: bool) -> None:
        self.done(connection, close)
        connection.busy = False
        connection.read_requests()  # any request that came while this one was held


class HttpConnection(asyncio.Protocol):
    """One client connection: requests read in turn, each answered before the next."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        # The request being read: its head (None until it is whole), the head in lower
        # case, its body's length, whether to close after the answer.
        self.head: bytes | None = None
        self.lowered = b""
        self.length = 0
        self.close = False
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.read_requests()

    def read_requests(self) -> None:
        buffer = self.buffer
        try:
            while not self.busy and self.transport is not None:
                if self.head is None and not self.take_head():
                    return
                length = self.length
                if len(buffer) < length:
                    return
                body = bytes(buffer[:length])
                del buffer[:length]
                head, self.head = self.head, None
                assert head is not None
                self.receiver.serve(self, head, self.lowered, body)
        except Unreadable as exc:
            self.refuse(exc.status, str(exc))
        except (ValueError, IndexError) as exc:  # a request line or length that does not parse
            self.refuse("400 Bad Request", repr(exc))

    def take_head(self) -> bool:
        """Whether a whole head was there (and is now taken from the buffer)."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.head = bytes(buffer[:end])
        del buffer[: end + 4]
        self.lowered = lowered = self.head.lower()
        self.length = body_length(lowered)
        self.close = closes(lowered)
        if len(buffer) < self.length and b"\r\nexpect: 100-continue" in lowered:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n", False)
        return True

    def refuse(self, status: str, reason: str) -> None:
        # Loudly: a request the bench sends should never get here.
        print(f"receiver: answered {status}: {reason}", file=sys.stderr, flush=True)
        self.write(answer(status, b"", True), True)

    def write(self, data: bytes, close: bool) -> None:
        if self.transport is None:
            return  # the client has gone
        self.transport.write(data)
        if close:
            self.transport.close()
            self.transport = None


async def start(port: int, mode: str, delay: float) -> asyncio.Server:
    """The receiver listening on 127.0.0.1:`port` (0: a free port)."""
    receiver = Receiver(mode, delay)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpConnection(receiver), "127.0.0.1", port, backlog=1024
    )


async def serve(port: int, mode: str, delay: float) -> None:
    server = await start(port, mode, delay)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("fast", "slow", "dead"), default="fast")
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.mode, args.delay))


if __name__ == "__main__":
    main()
