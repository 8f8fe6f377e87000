"""bench/loadgen.py and bench/receiver.py: the bench's own HTTP client and receiver, each
against the other and against aiohttp (the dispatcher's client, a server that closes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from bench import loadgen, receiver


async def started(mode: str, delay: float = 0.2) -> tuple[asyncio.Server, int]:
    server = await receiver.start(0, mode, delay)
    port: int = server.sockets[0].getsockname()[1]
    return server, port


@pytest.fixture
async def fast() -> AsyncIterator[int]:
    server, port = await started("fast")
    yield port
    server.close()


async def stats(connection: loadgen.Connection, port: int, query: str = "") -> Any:
    status, body = await connection.send(loadgen.build_request("GET", port, f"/stats{query}"))
    assert status == 200
    return orjson.loads(body)


def upload_event(upload_id: str, uploaded_at: str) -> bytes:
    data = {"upload_id": upload_id, "filename": "f.bin", "uploaded_at": uploaded_at}
    return orjson.dumps({"type": "upload.completed", "timestamp": uploaded_at, "data": data})


async def test_the_receiver_counts_deliveries_as_sent_by_the_dispatchers_client(
    fast: int,
) -> None:
    upload_id = str(uuid.uuid4())
    uploaded_at = "2026-01-02T03:04:05.500000Z"
    other_event = orjson.dumps({"type": "t", "timestamp": uploaded_at, "data": {"n": 1}})
    url = f"http://127.0.0.1:{fast}"
    async with aiohttp.ClientSession() as http:
        for body, webhook_id in [
            (upload_event(upload_id, uploaded_at), "D-1"),
            (upload_event(upload_id, uploaded_at), "D-2"),  # the same upload again
            (other_event, "Delivery-3"),
        ]:
            headers = {"content-type": "application/json", "webhook-id": webhook_id}
            async with http.post(f"{url}/hook/1", data=body, headers=headers) as resp:
                assert resp.status == 204
                assert await resp.read() == b""
        async with http.post(f"{url}/direct", data=b"--multipart--") as resp:
            assert resp.status == 204
    async with loadgen.connections(fast, 1) as (connection,):
        figures = await stats(connection, fast)
        assert figures["requests"] == 4
        assert figures["duplicates"] == 1
        assert figures["delivered"] == 2
        assert figures["in_flight"] == 0
        assert figures["arrivals"].keys() == {upload_id, "Delivery-3"}
        origin = 1767323045.5  # uploaded_at as epoch seconds
        expected = (figures["arrivals"][upload_id] - origin) * 1000
        assert figures["latencies_ms"][upload_id] == pytest.approx(expected)
        assert figures["last_arrival"] == figures["arrivals"]["Delivery-3"]
        summary = await stats(connection, fast, "?summary=1")
        assert "arrivals" not in summary
        assert summary["delivered"] == 2
        status, _ = await connection.send(loadgen.build_request("POST", fast, "/reset"))
        assert status == 204
        assert (await stats(connection, fast))["requests"] == 0


async def test_the_slow_receiver_holds_each_request_and_counts_them_open() -> None:
    server, port = await started("slow", 0.2)
    request = loadgen.build_request("POST", port, "/direct", b"x" * 2000)
    try:
        async with loadgen.connections(port, 5) as opened:
            answers = await asyncio.gather(*(c.send(request) for c in opened))
            assert [status for status, _ in answers] == [204] * 5
            figures = await stats(opened[0], port, "?summary=1")
        assert figures["max_in_flight"] == 5
        assert figures["in_flight"] == 0
    finally:
        server.close()


async def test_the_receiver_refuses_a_chunked_body_loudly(fast: int) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{fast}/hook", data=chunks()) as resp,
    ):
        assert resp.status == 501


async def test_loadgen_opens_again_after_an_answer_that_closes() -> None:
    async def closing(request: web.Request) -> web.Response:
        response = web.json_response({"peer": request.transport.get_extra_info("peername")[1]})
        response.force_close()  # as nginx after keepalive_requests
        return response

    app = web.Application()
    app.router.add_get("/", closing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with loadgen.connections(port, 1) as (connection,):
            request = loadgen.build_request("GET", port, "/")
            peers = {orjson.loads((await connection.send(request))[1])["peer"] for _ in range(3)}
        assert len(peers) == 3  # one connection each
    finally:
        await runner.cleanup()


async def test_loadgen_refuses_a_chunked_answer() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"{}")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with loadgen.connections(port, 1) as (connection,):
            with pytest.raises(loadgen.ProtocolError, match="Transfer-Encoding"):
                await connection.send(loadgen.build_request("GET", port, "/"))
    finally:
        await runner.cleanup()


async def test_the_receiver_reads_requests_split_or_together_and_closes_when_asked(
    fast: int,
) -> None:
    one = loadgen.build_request("POST", fast, "/direct", b"x" * 3000)
    reader, writer = await asyncio.open_connection("127.0.0.1", fast)
    writer.write(one + one[:100])  # one and a bit, then the rest
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(one[100:] + loadgen.build_request("GET", fast, "/stats?summary=1"))
    writer.write(b"POST /direct HTTP/1.0\r\nContent-Length: 2\r\n\r\nxx")
    await writer.drain()
    answers = await reader.read()  # to the end: the HTTP/1.0 request closes the connection
    writer.close()
    assert answers.count(b"HTTP/1.1 204 No Content\r\n") == 3
    assert b'"requests":2,' in answers
    assert answers.endswith(b"Connection: close\r\n\r\n")
