"""The floor: the leanest correct durable pipeline on our own stack, written apart from the
product, so `make bench --only floor` can say how far above it the product's events go.

- `ingest`: aiohttp; POST /event makes one INSERT and one aio-pika publish, and answers 202
  once the broker has confirmed it (with no outbox, the confirm is what makes the 202 durable);
- `deliver`: an aio-pika consumer that signs (Standard Webhooks), POSTs, records the outcome in
  one UPDATE and then acks (a failure is requeued, so nothing accepted is lost);
- uvloop, synchronous commit on (the server's default), a durable quorum queue and persistent
  messages, as the product has. It batches nothing and knows no webhooks: every event goes to
  the one URL it was started with.

Each part runs as a process (`python -m bench.floor ingest|deliver ...`), so the bench counts
its CPU apart. The load client and receiver are the product's own (bench/events.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import orjson
import uvloop
from aiohttp import web

from bench.cpu import cpu_ms_per, cpu_seconds_by_component
from bench.events import create_event_type, event_bodies, events_end_to_end, post_events, wait_count
from bench.stack import Bench
from harness.infra import amqp_url_for
from harness.processes import REPO, wait_http_ok
from harness.stack import free_port

QUEUE = "bench.floor"
SECRET = base64.b64encode(b"floor-secret-of-32-bytes-exactly")
TABLE = """CREATE TABLE IF NOT EXISTS floor_events (
    id uuid PRIMARY KEY, body jsonb NOT NULL, accepted_at timestamptz NOT NULL DEFAULT now(),
    status integer, delivered_at timestamptz)"""
JSON = {"Content-Type": "application/json"}


async def open_queue(amqp_url: str, prefetch: int = 0) -> tuple[Any, Any, Any]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    if prefetch:
        await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    return connection, channel, queue


async def ingest(port: int, database_url: str, amqp_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    _, channel, _ = await open_queue(amqp_url)

    async def accept(request: web.Request) -> web.Response:
        try:
            event = orjson.loads(await request.read())
            payload = event["payload"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return web.json_response({"error": "a JSON object with payload"}, status=400)
        event_id = uuid.uuid4()
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        body = orjson.dumps(
            {"type": event.get("event_type_id"), "timestamp": stamp, "data": payload}
        )
        await pool.execute(
            "INSERT INTO floor_events (id, body) VALUES ($1, $2)", event_id, body.decode()
        )
        message = aio_pika.Message(
            body, message_id=str(event_id), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await channel.default_exchange.publish(message, routing_key=QUEUE)
        return web.json_response({"id": str(event_id)}, status=202)

    app = web.Application()
    app.router.add_post("/event", accept)
    app.router.add_get("/readyz", lambda _: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def deliver(port: int, database_url: str, amqp_url: str, target: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    _, _, queue = await open_queue(amqp_url, prefetch=256)
    key = base64.b64decode(SECRET)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def one(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        msg_id = str(message.message_id)
        stamp = str(int(time.time()))
        mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + message.body, hashlib.sha256)
        headers = {
            **JSON,
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        }
        try:
            async with http.post(target, data=message.body, headers=headers) as resp:
                await resp.read()
                status = resp.status
            await pool.execute(
                "UPDATE floor_events SET status = $2, delivered_at = now() WHERE id = $1",
                uuid.UUID(msg_id),
                status,
            )
        except (aiohttp.ClientError, OSError, asyncpg.PostgresError):
            await message.nack(requeue=True)
            return
        await message.ack()

    await queue.consume(one)
    app = web.Application()
    app.router.add_get("/readyz", lambda _: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def start(bench: Bench) -> int:
    """The floor's two processes beside the product's, counted apart; its ingest port."""
    connection = await asyncpg.connect(bench.database_url)
    await connection.execute(TABLE)
    await connection.close()
    target = f"{bench.receivers[0].url}/hook/floor"
    ports = {"floor-ingest": free_port(), "floor-deliver": free_port()}
    for name, port in ports.items():
        part = name.removeprefix("floor-")
        command = [sys.executable, "-m", "bench.floor", part, "--port", str(port)]
        command += ["--database-url", bench.database_url, "--amqp-url", amqp_url_for(bench.vhost)]
        command += ["--target", target]
        with (bench.workdir / f"{name}.log").open("wb") as log:
            bench.processes[name] = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            await wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=30)
        except AssertionError:
            sys.exit(f"{name} did not start:\n{(bench.workdir / f'{name}.log').read_text()}")
    return ports["floor-ingest"]


async def floor_end_to_end(bench: Bench, port: int, count: int) -> dict[str, float]:
    """The floor's events end to end, as events_end_to_end measures the product's."""
    receiver = bench.receivers[0]
    bodies = event_bodies(str(uuid.uuid4()), 1, count)
    await receiver.reset()
    started = time.time()
    accepted, took = await post_events(bench, bodies, 32, port=port)
    summary = await wait_count(bench, receiver, accepted, timeout=120)
    last = summary["last_arrival"] or time.time()
    return {
        "events_per_s": accepted / took,
        "deliveries_per_s": summary["delivered"] / (last - started),
        "lost": accepted - summary["delivered"],
    }


async def measured(bench: Bench, run: Any, count: int) -> dict[str, Any]:
    before = cpu_seconds_by_component(bench)
    figures = await run
    by_component = cpu_ms_per(before, cpu_seconds_by_component(bench), count)
    figures["cpu_ms_per_delivery"] = round(sum(by_component.values()), 3)
    figures["cpu_by_component"] = {name: ms for name, ms in by_component.items() if ms}
    return dict(figures)


async def compare(bench: Bench, count: int, rounds: int) -> dict[str, Any]:
    """Product and floor events end to end, alternated (product first in even rounds)."""
    port = await start(bench)
    await create_event_type(bench)  # the first type's cache misses land outside the runs
    product_runs, floor_runs = [], []
    for n in range(rounds):
        pair = [
            ("product", lambda: events_end_to_end(bench, count, 32)),
            ("floor", lambda: floor_end_to_end(bench, port, count)),
        ]
        for name, run in pair if n % 2 == 0 else reversed(pair):
            figures = await measured(bench, run(), count)
            (product_runs if name == "product" else floor_runs).append(figures)
            print(f"  round {n + 1} {name}: {figures}", flush=True)
    pairs = list(zip(product_runs, floor_runs, strict=True))
    ratios = [p["deliveries_per_s"] / f["deliveries_per_s"] for p, f in pairs]
    cpu_ratios = [p["cpu_ms_per_delivery"] / f["cpu_ms_per_delivery"] for p, f in pairs]
    return {
        **{
            f"{name}_{figure}": statistics.median(r[figure] for r in runs)
            for name, runs in (("product", product_runs), ("floor", floor_runs))
            for figure in ("deliveries_per_s", "cpu_ms_per_delivery")
        },
        "ratio": statistics.median(ratios),
        "ratios": [round(r, 3) for r in ratios],
        "cpu_ratio": statistics.median(cpu_ratios),
        "rounds": {"product": product_runs, "floor": floor_runs},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("part", choices=("ingest", "deliver"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    uvloop.install()
    if args.part == "ingest":
        asyncio.run(ingest(args.port, args.database_url, args.amqp_url))
    else:
        asyncio.run(deliver(args.port, args.database_url, args.amqp_url, args.target))


if __name__ == "__main__":
    main()
