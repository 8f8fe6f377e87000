"""Whether the upload's multipart fast paths pay: the same uploads with and without them.

The fast paths (services/upload/ingest/multipart.py) are a small body's file part cut out
whole (`is_small` / `small_form`) and the usual Content-Disposition read without aiohttp's
parser (`simple_disposition`). Without them every body goes through aiohttp's
MultipartReader, as it does for any body they decline. Measured both ways:

- in process: a request's multipart path as the upload handler runs it (open the form,
  find the file part, store it, read to the closing delimiter), 1 KiB and 1 MiB files;
- over HTTP on 127.0.0.1: an aiohttp server whose handler runs that path and answers
  (no database, no broker), loaded by bench.loadgen's keep-alive client.

`python -m bench.multipart_fastpath` prints medians of ROUNDS rounds, the two variants
taking turns; it runs for about half a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import StreamReader, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from bench.loadgen import Connection, build_request, connections
from services.upload.ingest import multipart
from services.upload.ingest.storage import store_part

ROUNDS = 5
BOUNDARY = "------------------------d74496d66958873e"  # curl's shape
SMALL_FILE = b"x" * 1024
LARGE_FILE = b"x" * (1024 * 1024)
# Per round: in-process runs of each size, and HTTP requests over CONNECTIONS connections.
SMALL_RUNS, LARGE_RUNS = 2000, 40
HTTP_REQUESTS, CONNECTIONS = 2000, 8
MAX_BYTES = 100 * 1024 * 1024


def form_body(content: bytes) -> bytes:
    """One `file` part, as curl -F and aiohttp's FormData send it."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="hello.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def form_headers(body: bytes) -> CIMultiDict[str]:
    return CIMultiDict(
        {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(body)),
        }
    )


@contextlib.contextmanager
def without_fast_paths() -> Iterator[None]:
    """Every body read by aiohttp's reader, every Content-Disposition by aiohttp's parser."""
    saved = multipart.is_small, multipart.simple_disposition
    multipart.is_small = lambda request: False
    multipart.simple_disposition = lambda header: None
    try:
        yield
    finally:
        multipart.is_small, multipart.simple_disposition = saved


async def store_upload(request: web.Request, folder: str) -> int:
    """The upload handler's multipart path, the database left out: the stored size."""
    form = multipart.open_form(request)
    part = await multipart.find_file_part(request, form)
    stored = await store_part(part, folder, MAX_BYTES)
    await multipart.finish_form(form)
    return stored.size


def arrived(body: bytes) -> StreamReader:
    """A request's stream holding the whole body, as when it has arrived in full."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    stream._high_water = len(body) + 1  # held whole: no reading paused (no socket here)
    stream.feed_data(body)
    stream.feed_eof()
    return stream


async def in_process(body: bytes, runs: int, folder: str) -> float:
    """Microseconds per upload of `body`; the requests are made beforehand, untimed."""
    headers = form_headers(body)
    requests = [
        make_mocked_request("POST", "/upload", headers=headers, payload=arrived(body))
        for _ in range(runs)
    ]
    started = time.perf_counter()
    for request in requests:
        await store_upload(request, folder)
    return (time.perf_counter() - started) / runs * 1e6


async def over_http(port: int, body: bytes) -> float:
    """Uploads per second of `body` to the server on `port`."""
    content_type = {"Content-Type": form_headers(body)["Content-Type"]}
    request = build_request("POST", port, "/upload", body, content_type)
    per_connection = HTTP_REQUESTS // CONNECTIONS
    async with connections(port, CONNECTIONS) as conns:
        started = time.perf_counter()

        async def send_all(conn: Connection) -> None:
            for _ in range(per_connection):
                status, _ = await conn.send(request)
                assert status == 200, status

        await asyncio.gather(*(send_all(conn) for conn in conns))
        elapsed = time.perf_counter() - started
    return per_connection * CONNECTIONS / elapsed


async def serve(folder: str) -> tuple[web.AppRunner, int]:
    async def upload(request: web.Request) -> web.Response:
        return web.json_response({"size": await store_upload(request, folder)})

    app = web.Application()
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def both_ways(
    measure: Callable[[], Awaitable[float]], fast_first: bool
) -> tuple[float, float]:
    """(with, without) the fast paths, in the order given (rounds take turns)."""
    results: dict[bool, float] = {}
    for fast in (fast_first, not fast_first):
        with contextlib.nullcontext() if fast else without_fast_paths():
            results[fast] = await measure()
    return results[True], results[False]


async def main() -> None:
    small, large = form_body(SMALL_FILE), form_body(LARGE_FILE)
    rows: dict[str, list[tuple[float, float]]] = {
        "in process, 1 KiB file (us/upload)": [],
        "in process, 1 MiB file (us/upload)": [],
        "HTTP 127.0.0.1, 1 KiB file (uploads/s)": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        runner, port = await serve(folder)
        try:
            for round_number in range(ROUNDS):
                measures = [
                    lambda: in_process(small, SMALL_RUNS, folder),
                    lambda: in_process(large, LARGE_RUNS, folder),
                    lambda: over_http(port, small),
                ]
                for name, measure in zip(rows, measures, strict=True):
                    rows[name].append(await both_ways(measure, round_number % 2 == 0))
        finally:
            await runner.cleanup()
    print(f"{'median of ' + str(ROUNDS) + ' rounds':42} {'with':>10} {'without':>10} {'gain':>7}")
    for name, results in rows.items():
        with_fast = statistics.median(r[0] for r in results)
        without = statistics.median(r[1] for r in results)
        per_second = name.endswith("/s)")
        gain = with_fast / without - 1 if per_second else without / with_fast - 1
        print(f"{name:42} {with_fast:10.1f} {without:10.1f} {gain:+7.0%}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
