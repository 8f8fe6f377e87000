"""The bench's upload and API scenarios (SPEC section 13): uploads end to end beside the
direct-POST ceiling, slow receivers, a dead endpoint's isolation, a big file, and the API's
request rates. The event scenarios are in bench/events.py."""

from __future__ import annotations

import asyncio
import time

import orjson

from bench import loadgen
from bench.measure import (
    MULTIPART_HEADERS,
    multipart_body,
    percentile,
    requests_per_second,
    upload_many,
    wait_delivered,
)
from bench.stack import Bench
from harness.processes import curl_upload, peak_rss_kib, rss_kib
from harness.stack import UPLOAD_EVENT_TYPE_ID

# The direct-POST ceiling is measured this long, in each end-to-end run.
CEILING_SECONDS = 1.0


async def end_to_end(bench: Bench, uploads: int, concurrency: int) -> dict[str, float]:
    receiver = bench.receivers[0]
    webhook = await bench.register(f"{receiver.url}/hook")
    await receiver.reset()
    body = multipart_body(1024)
    accepted, started, accepted_by = await upload_many(
        bench.gateway_port, [webhook], uploads, concurrency, body
    )
    stats = await wait_delivered(receiver, set(accepted), timeout=120)
    arrivals: dict[str, float] = stats["arrivals"]
    delivered = [upload for upload in accepted if upload in arrivals]
    latencies = [stats["latencies_ms"][u] for u in delivered]
    last_delivery = max(arrivals[u] for u in delivered)
    return {
        "uploads_per_s": len(accepted) / (accepted_by - started),
        "deliveries_per_s": len(delivered) / (last_delivery - started),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_p99_ms": percentile(latencies, 0.99),
        "accepted": len(accepted),
        "lost": len(accepted) - len(delivered),
        "duplicates": stats["duplicates"],
    }


async def direct_ceiling(bench: Bench, concurrency: int) -> float:
    """The same client POSTing the same multipart straight to the receiver, for
    CEILING_SECONDS (2,000 requests took some 30 ms, too short to be steady)."""
    receiver = bench.receivers[0]
    request = loadgen.build_request(
        "POST", receiver.port, "/direct", multipart_body(1024), MULTIPART_HEADERS
    )
    sent = 0

    async def client(connection: loadgen.Connection) -> None:
        nonlocal sent
        while time.monotonic() < stop_at:
            await connection.send(request)
            sent += 1

    async with loadgen.connections(receiver.port, concurrency) as opened:
        started = time.monotonic()
        stop_at = started + CEILING_SECONDS
        await asyncio.gather(*(client(connection) for connection in opened))
        return sent / (time.monotonic() - started)


async def slow_receivers(bench: Bench, uploads: int, endpoints: int) -> dict[str, float]:
    receiver = next(r for r in bench.receivers if r.mode == "slow")
    hooks = [await bench.register(f"{receiver.url}/hook/{n}") for n in range(endpoints)]
    await receiver.reset()
    accepted, started, _ = await upload_many(
        bench.gateway_port, hooks, uploads, 32, multipart_body(1024)
    )
    stats = await wait_delivered(receiver, set(accepted), timeout=120)
    arrivals = stats["arrivals"]
    # Drained when the last one has been answered; the next run must not start earlier,
    # or its reset would lose count of requests still open.
    while stats["in_flight"] > 0:
        await asyncio.sleep(0.05)
        stats = await receiver.summary()
    drained = time.time() - started
    return {
        "max_open": stats["max_in_flight"],
        "drain_s": drained,
        "lost": len(set(accepted) - arrivals.keys()),
    }


async def isolation(bench: Bench, dead_uploads: int, healthy_uploads: int) -> dict[str, float]:
    healthy = bench.receivers[0]
    dead = next(r for r in bench.receivers if r.mode == "dead")
    dead_hook = await bench.register(f"{dead.url}/hook")
    healthy_hook = await bench.register(f"{healthy.url}/hook/healthy")
    await healthy.reset()
    body = multipart_body(1024)
    flood = asyncio.create_task(
        upload_many(bench.gateway_port, [dead_hook], dead_uploads, 16, body)
    )
    await asyncio.sleep(0.5)  # the dead endpoint's deliveries are hanging by now
    accepted, _, _ = await upload_many(bench.gateway_port, [healthy_hook], healthy_uploads, 8, body)
    await flood
    stats = await wait_delivered(healthy, set(accepted), timeout=120)
    # Its deliveries would be retried through the scenarios after this one, their cost
    # counted in theirs (the floor's, the ordered ones'): they are cancelled instead.
    await bench.delete_webhook(dead_hook)
    arrivals = stats["arrivals"]
    latencies = [stats["latencies_ms"][u] for u in accepted if u in arrivals]
    return {
        "healthy_p50_ms": percentile(latencies, 0.50),
        "healthy_p99_ms": percentile(latencies, 0.99),
        "lost": len(set(accepted) - arrivals.keys()),
    }


async def big_file(bench: Bench, size: int) -> dict[str, float]:
    await bench.restart_service("upload")  # a fresh process, so its peak RSS is this upload's
    pid = bench.processes["upload"].pid
    baseline = rss_kib(pid)
    webhook = await bench.register("http://127.0.0.1:9/unused")
    path = bench.workdir / "big.bin"
    with path.open("wb") as handle:
        handle.truncate(size)  # sparse: the client reads zeros without disk I/O
    started = time.monotonic()
    response = await curl_upload(f"{bench.gateway_url}/upload_file/webhook_id/{webhook}", path)
    elapsed = time.monotonic() - started
    assert response["data"]["size"] == size, response
    peak = peak_rss_kib(pid)
    stored = bench.workdir / "uploads" / response["data"]["upload_id"] / "big.bin"
    stored.unlink()
    path.unlink()
    return {
        "mb_per_s": size / 1e6 / elapsed,
        "rss_growth_mib": (peak - baseline) / 1024,
    }


async def api(bench: Bench, seconds: float) -> dict[str, float]:
    port = bench.gateway_port
    list_types = loadgen.build_request("GET", port, "/event_type")
    register_body = orjson.dumps(
        {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": "http://127.0.0.1:9/x"}
    )
    register = loadgen.build_request(
        "POST", port, "/webhook/register", register_body, {"Content-Type": "application/json"}
    )
    return {
        "event_type_per_s": await requests_per_second(port, list_types, seconds, 32),
        "register_per_s": await requests_per_second(port, register, seconds, 32),
    }
