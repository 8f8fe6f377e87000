"""The bench's ways to load the system and read figures: prebuilt uploads sent from many
keep-alive connections, request rates, waits for deliveries, percentiles and medians."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import orjson

from bench import loadgen
from bench.stack import Receiver

BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"
MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart_body(size: int) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + os.urandom(size)
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


async def upload_many(
    port: int, webhook_ids: list[str], count: int, concurrency: int, body: bytes
) -> tuple[dict[str, float], float, float]:
    """Upload `count` files round-robin over the webhooks through the gateway on `port`;
    (accepted-at by id, t0, t1)."""
    accepted: dict[str, float] = {}
    next_index = 0
    requests = [
        loadgen.build_request("POST", port, f"/upload_file/webhook_id/{w}", body, MULTIPART_HEADERS)
        for w in webhook_ids
    ]

    async def client(connection: loadgen.Connection) -> None:
        nonlocal next_index
        while next_index < count:
            request = requests[next_index % len(requests)]
            next_index += 1
            status, answer = await connection.send(request)
            if status == 200:
                accepted[orjson.loads(answer)["data"]["upload_id"]] = time.time()

    async with loadgen.connections(port, concurrency) as opened:
        started = time.time()
        await asyncio.gather(*(client(connection) for connection in opened))
    return accepted, started, time.time()


async def requests_per_second(
    port: int, request: bytes, seconds: float, concurrency: int, success: int = 200
) -> float:
    """The same prebuilt request to the gateway on `port`, from `concurrency` clients for
    `seconds`: answers `success` a second."""
    done = 0
    errors = 0

    async def client(connection: loadgen.Connection) -> None:
        nonlocal done, errors
        while time.monotonic() < stop_at:
            status, _ = await connection.send(request)
            if status == success:
                done += 1
            else:
                errors += 1

    async with loadgen.connections(port, concurrency) as opened:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(*(client(connection) for connection in opened))
    if errors:
        print(f"    ({errors} answers other than {success})", flush=True)
    return done / (time.monotonic() - started)


async def wait_delivered(receiver: Receiver, ids: set[str], timeout: float) -> dict[str, Any]:
    """The receiver's figures per delivery once they hold every id, or when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        # The counts until there are enough; then the figures per delivery, which are
        # dearer to make and read, and return them once they hold every id.
        summary = await receiver.summary()
        if summary["delivered"] >= len(ids) or time.monotonic() > deadline:
            stats = await receiver.stats()
            if ids <= stats["arrivals"].keys() or time.monotonic() > deadline:
                return stats
        await asyncio.sleep(0.1)
