"""The bench's event scenarios (SPEC section 13): events end to end, fan-out to 1,000
webhooks, thousands of slow deliveries open at once, and a backlog drained while ingest
goes on. Each is bounded in time: a wait that runs out reports what it saw."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from bench import loadgen
from bench.cpu import cpu_ms_per, cpu_seconds_by_component, machine_cpu_shares, machine_cpu_ticks
from bench.measure import MULTIPART_HEADERS, multipart_body, percentile, requests_per_second
from bench.stack import Bench, Receiver
from harness.processes import peak_rss_kib, rss_kib, stop_process

JSON = {"Content-Type": "application/json"}
# The payload's filler: the event's body is 1 KiB as JSON.
PAD = "x" * 990


async def create_event_type(bench: Bench) -> str:
    assert bench.http is not None
    name = f"bench.{uuid.uuid4().hex[:12]}"
    body = {"name": name, "description": "bench"}
    async with bench.http.post(f"{bench.gateway_url}/event_type", json=body) as resp:
        assert resp.status == 201, await resp.text()
        type_id: str = (await resp.json())["data"]["id"]
    return type_id


async def register_many(
    bench: Bench, type_id: str, user_id: int, urls: list[str], also: Sequence[str] = ()
) -> list[str]:
    """Webhooks of `user_id` for the type (and the types `also`), through the API, 32 at a
    time."""
    assert bench.http is not None
    http = bench.http
    ids: list[str] = []
    pending = iter(urls)
    types: dict[str, Any] = (
        {"event_type_ids": [type_id, *also]} if also else {"event_type_id": type_id}
    )

    async def client() -> None:
        for url in pending:
            body = {**types, "user_id": user_id, "url": url}
            async with http.post(f"{bench.gateway_url}/webhook/register", json=body) as resp:
                assert resp.status == 200, await resp.text()
                ids.append((await resp.json())["data"]["id"])

    await asyncio.gather(*(client() for _ in range(32)))
    return ids


def event_bodies(type_id: str, user_id: int, count: int, keys: int = 0) -> list[bytes]:
    """Prebuilt POST /event bodies, 1 KiB payloads; with `keys`, event n has the
    ordering_key `key-{n % keys}` (bench/ordered.py)."""
    bodies = []
    for n in range(count):
        body: dict[str, Any] = {
            "event_type_id": type_id,
            "user_id": user_id,
            "payload": {"n": n, "pad": PAD},
        }
        if keys:
            body["ordering_key"] = f"key-{n % keys}"
        bodies.append(orjson.dumps(body))
    return bodies


async def post_events(
    bench: Bench, bodies: list[bytes], concurrency: int, port: int | None = None
) -> tuple[int, float]:
    """POST them, through the gateway unless another `port` is named; (accepted, seconds)."""
    port = bench.gateway_port if port is None else port
    # The request line and headers once; each request adds its length and body.
    head = loadgen.request_head("POST", port, "/event", JSON)
    accepted = 0
    pending = iter(bodies)

    async def client(connection: loadgen.Connection) -> None:
        nonlocal accepted
        for body in pending:
            status, _ = await connection.send(loadgen.with_body(head, body))
            accepted += status == 202

    async with loadgen.connections(port, concurrency) as opened:
        started = time.time()
        await asyncio.gather(*(client(connection) for connection in opened))
        return accepted, time.time() - started


async def wait_count(
    bench: Bench, receiver: Receiver, count: int, timeout: float, settle: bool = False
) -> dict[str, Any]:
    """The receiver's summary once `count` deliveries arrived (and, with `settle`, were
    all answered), or when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await receiver.summary()
        done = stats["delivered"] >= count and (not settle or stats["in_flight"] == 0)
        if done or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.02)


async def events_end_to_end(
    bench: Bench, count: int, concurrency: int, keys: int = 0
) -> dict[str, float]:
    """POST /event with one webhook each (over `keys` ordering keys, 0: none): events
    accepted/s, deliveries/s, latency."""
    receiver = bench.receivers[0]
    type_id = await create_event_type(bench)
    await register_many(bench, type_id, 1, [f"{receiver.url}/hook/events/{keys}"])
    bodies = event_bodies(type_id, 1, count, keys)
    await receiver.reset()
    started = time.time()
    accepted, took = await post_events(bench, bodies, concurrency)
    summary = await wait_count(bench, receiver, accepted, timeout=120)
    stats = await receiver.stats()
    latencies = list(stats["latencies_ms"].values())
    last = summary["last_arrival"] or time.time()
    return {
        "events_per_s": accepted / took,
        "deliveries_per_s": summary["delivered"] / (last - started),
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
        "latency_p99_ms": percentile(latencies, 0.99),
        "lost": accepted - summary["delivered"],
        "duplicates": summary["duplicates"],
    }


async def fan_out_webhooks(
    bench: Bench, webhooks: int, types_per_webhook: int = 1
) -> tuple[str, int]:
    """An event type and a user with `webhooks` webhooks on the fast receiver, each also
    subscribed to `types_per_webhook - 1` other types (so a fan-out of one type can be
    compared with the same fan-out over webhooks of many types)."""
    receiver = bench.receivers[0]
    type_id = await create_event_type(bench)
    others = [await create_event_type(bench) for _ in range(types_per_webhook - 1)]
    user_id = 100_000 + uuid.uuid4().int % 100_000
    urls = [f"{receiver.url}/hook/fan/{n}" for n in range(webhooks)]
    await register_many(bench, type_id, user_id, urls, others)
    return type_id, user_id


async def fan_out(bench: Bench, type_id: str, user_id: int, webhooks: int) -> dict[str, float]:
    """One event to every webhook: the request's time, and from the 202 to the last delivery."""
    assert bench.http is not None
    receiver = bench.receivers[0]
    await receiver.reset()
    started = time.time()
    body = event_bodies(type_id, user_id, 1)[0]
    async with bench.http.post(f"{bench.gateway_url}/event", data=body, headers=JSON) as resp:
        await resp.read()
        assert resp.status == 202
    answered = time.time()
    summary = await wait_count(bench, receiver, webhooks, timeout=60)
    last = summary["last_arrival"] or time.time()
    return {
        "request_ms": (answered - started) * 1000,
        "delivered_after_202_s": last - answered,
        "deliveries_per_s": summary["delivered"] / max(last - answered, 1e-3),
        "lost": webhooks - summary["delivered"],
    }


async def open_at_once(bench: Bench, deliveries: int, webhooks: int) -> dict[str, float]:
    """`deliveries` to `webhooks` webhooks whose receivers take 1 s each: the most open at
    once at the receiver, the time to drain them all, the dispatcher's peak RSS."""
    receiver = next(r for r in bench.receivers if r.mode == "slow")
    type_id = await create_event_type(bench)
    user_id = 200_000 + uuid.uuid4().int % 100_000
    urls = [f"{receiver.url}/hook/open/{n}" for n in range(webhooks)]
    await register_many(bench, type_id, user_id, urls)
    await bench.restart_service("dispatcher")  # its peak RSS is this scenario's
    await receiver.reset()
    started = time.time()
    accepted, _ = await post_events(
        bench, event_bodies(type_id, user_id, deliveries // webhooks), 8
    )
    summary = await wait_count(bench, receiver, accepted * webhooks, timeout=60, settle=True)
    drained = time.time() - started
    return {
        "max_open": summary["max_in_flight"],
        "drain_s": drained,
        "dispatcher_peak_rss_mib": peak_rss_kib(bench.processes["dispatcher"].pid) / 1024,
        "lost": accepted * webhooks - summary["delivered"],
    }


async def wait_for_deliveries(database_url: str, count: int, timeout: float) -> None:
    """Until the fan-out has made `count` deliveries (the dispatcher is stopped)."""
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while await connection.fetchval("SELECT count(*) FROM deliveries") < count:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def ingest_rates(
    bench: Bench, upload_hook: str, type_id: str, seconds: float
) -> dict[str, float]:
    """Uploads and events accepted a second, each measured alone for `seconds`."""
    port = bench.gateway_port
    upload_body = multipart_body(1024)
    upload_path = f"/upload_file/webhook_id/{upload_hook}"
    upload = loadgen.build_request("POST", port, upload_path, upload_body, MULTIPART_HEADERS)
    event = loadgen.build_request("POST", port, "/event", event_bodies(type_id, 1, 1)[0], JSON)
    return {
        "uploads_per_s": await requests_per_second(port, upload, seconds, 32),
        "events_per_s": await requests_per_second(port, event, seconds, 32, success=202),
    }


async def backlog(bench: Bench, count: int) -> dict[str, Any]:
    """`count` events accepted with the dispatcher stopped, then drained; ingest measured
    idle (before) and during the drain."""
    receiver = bench.receivers[0]
    type_id = await create_event_type(bench)
    await register_many(bench, type_id, 1, [f"{receiver.url}/hook/backlog"])
    # Ingest measured beside the backlog goes to a receiver of its own, so that the
    # backlog's deliveries are counted alone.
    side = await bench.receiver("fast")
    side_type = await create_event_type(bench)
    await register_many(bench, side_type, 1, [f"{side.url}/hook/ingest"])
    upload_hook = await bench.register(f"{side.url}/hook/uploads")
    idle = await ingest_rates(bench, upload_hook, side_type, 3.0)
    await asyncio.sleep(3)  # what the idle run asked for is delivered by now (or soon)
    await asyncio.to_thread(stop_process, bench.processes["dispatcher"], 30)
    connection = await asyncpg.connect(bench.database_url)
    before = await connection.fetchval("SELECT count(*) FROM deliveries")
    await connection.close()
    accepted, took = await post_events(bench, event_bodies(type_id, 1, count), 64)
    await wait_for_deliveries(bench.database_url, before + accepted, timeout=120)
    await receiver.reset()
    await side.reset()
    cpu_before, machine_before = cpu_seconds_by_component(bench), machine_cpu_ticks()
    await bench.start_service("dispatcher")
    started = time.time()
    pid = bench.processes["dispatcher"].pid
    rss_samples = [rss_kib(pid)]
    await asyncio.sleep(1.0)
    during = await ingest_rates(bench, upload_hook, side_type, 3.0)
    while True:
        summary = await wait_count(bench, receiver, accepted, timeout=1.0)
        rss_samples.append(rss_kib(pid))
        if summary["delivered"] >= accepted or time.time() - started > 300:
            break
    last = summary["last_arrival"] or time.time()
    # Where the CPU went while draining, per delivery made (the backlog's and the ingest's
    # beside it), and whether the machine was the limit.
    made = summary["delivered"] + (await side.summary())["delivered"]
    drain_cpu = cpu_ms_per(cpu_before, cpu_seconds_by_component(bench), max(made, 1))
    return {
        "drain_cpu_ms_per_delivery": {name: ms for name, ms in drain_cpu.items() if ms},
        "drain_machine_cpu": machine_cpu_shares(machine_before, machine_cpu_ticks()),
        "filled_events_per_s": accepted / took,
        "drain_per_s": summary["delivered"] / (last - started),
        "dispatcher_peak_rss_mib": peak_rss_kib(pid) / 1024,
        "idle_uploads_per_s": idle["uploads_per_s"],
        "idle_events_per_s": idle["events_per_s"],
        "drain_uploads_per_s": during["uploads_per_s"],
        "drain_events_per_s": during["events_per_s"],
        "lost": max(0, accepted - summary["delivered"]),
    }
