"""`make cluster-test`: a stream of uploads while the node leading `webhooks.dispatch` stops.

Starts a three-node RabbitMQ cluster of its own on this machine (deploy/local/
rabbitmq_cluster.py; the machine's own RabbitMQ is not touched), a database of its own,
the three services as processes with AMQP_URL listing all three nodes, and a webhook
receiver. It uploads at a steady rate straight to the upload service, stops the leader of
the dispatch queue half way, keeps uploading, waits for every delivery, and prints as its
last line `cluster: accepted N, delivered N, lost 0, duplicates D, recovery S s`:
lost = accepted uploads whose delivery never arrived, duplicates = extra receipts of one
`webhook-id`, recovery = from the start of the stop until the first delivery of an upload
accepted once the node was down. Everything it started is removed at the end, on failure
too (`--logs DIR` keeps the services' logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.fault_stream import Send, Stream, Tally, steady_stream, tally, wait_delivered
from deploy.local.rabbitmq_cluster import LocalCluster, Node
from harness.infra import create_database, drop_database, unique_name
from harness.processes import service_env, start_service, stop_process, wait_http_ok
from harness.receiver import Received, Receiver
from harness.stack import free_port, register_webhook
from services.common.messages import DISPATCH_QUEUE

SERVICES = ("registration", "upload", "dispatcher")


@dataclass
class ClusterResult(Tally):
    refused: dict[int, int]
    stopped: str
    accepted_after_stop: int
    stop_seconds: float

    def line(self) -> str:
        return f"cluster: {self.numbers()}"


@dataclass
class ClusterStream(Stream):
    stopped: Node | None = None


@contextlib.asynccontextmanager
async def services(
    database_url: str, amqp_urls: str, workdir: Path, **env_overrides: str
) -> AsyncIterator[dict[str, int]]:
    """The three services as processes; yields their ports once every /readyz answers."""
    ports = {service: free_port() for service in SERVICES}
    env = service_env(
        DATABASE_URL=database_url,
        AMQP_URL=amqp_urls,
        UPLOAD_DIR=str(workdir / "uploads"),
        ALLOW_PRIVATE_URLS="true",
        RETRY_SCHEDULE="1,1,2,2,5",
        DELIVERY_TIMEOUT_SECONDS="5",
        SHUTDOWN_GRACE_SECONDS="10",
        **{f"{service.upper()}_PORT": str(port) for service, port in ports.items()},
        **env_overrides,
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for service in SERVICES:
            processes.append(start_service(service, env, workdir / f"{service}.log"))
        for service in SERVICES:
            await wait_http_ok(f"http://127.0.0.1:{ports[service]}/readyz", timeout=90)
        yield ports
    finally:
        await asyncio.gather(*(asyncio.to_thread(stop_process, p, 20) for p in processes))


def upload_sender(http: aiohttp.ClientSession, upload_url: str) -> Send:
    async def send(_n: int) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("file", b"cluster", filename="c.txt", content_type="text/plain")
        async with http.post(upload_url, data=form) as resp:
            body = await resp.json(content_type=None)
            return resp.status, str(body.get("data", {}).get("upload_id", ""))

    return send


def upload_of(received: Received) -> str:
    return str(received.json()["data"]["upload_id"])


async def stop_leader_half_way(cluster: LocalCluster, stream: ClusterStream) -> None:
    await stream.half_way.wait()
    leader = await asyncio.to_thread(cluster.leader_of, DISPATCH_QUEUE)
    print(
        f"  stopping {leader.name}, leader of {DISPATCH_QUEUE}, after "
        f"{len(stream.accepted)} accepted ...",
        flush=True,
    )
    stream.stop_started = time.monotonic()
    stream.stopped = leader
    await asyncio.to_thread(cluster.stop_node, leader)
    stream.stop_done = time.monotonic()
    new_leader = await asyncio.to_thread(cluster.leader_of, DISPATCH_QUEUE)
    print(f"  stopped; {DISPATCH_QUEUE} now led by {new_leader.name}", flush=True)


async def run(
    total: int = 500, rate: float = 40.0, workdir: Path | None = None, keep_logs: Path | None = None
) -> ClusterResult:
    database = unique_name("webhooks_cluster")
    receiver = await Receiver().start()
    stream = ClusterStream()
    try:
        with tempfile.TemporaryDirectory(prefix="webhooks-cluster-run-", dir=workdir) as tmp:
            database_url = create_database(database)
            cluster = LocalCluster()
            try:
                print(f"cluster: starting 3 RabbitMQ nodes in {cluster.base} ...", flush=True)
                await asyncio.to_thread(cluster.start)
                async with (
                    services(database_url, cluster.amqp_urls(), Path(tmp)) as ports,
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                ):
                    members = await asyncio.to_thread(cluster.members_of, DISPATCH_QUEUE)
                    print(f"  {DISPATCH_QUEUE} has {len(members)} members", flush=True)
                    base = f"http://127.0.0.1:{ports['registration']}"
                    webhook = await register_webhook(http, base, receiver.url)
                    upload_url = (
                        f"http://127.0.0.1:{ports['upload']}/upload_file/webhook_id/{webhook['id']}"
                    )
                    print(
                        f"  {total} uploads at {rate:g}/s (events do not exist yet: the stream "
                        "is uploads only)",
                        flush=True,
                    )
                    # A task group: if the stop fails, the upload stream is cancelled too.
                    async with asyncio.TaskGroup() as group:
                        send = upload_sender(http, upload_url)
                        group.create_task(steady_stream(send, stream, total, rate))
                        group.create_task(stop_leader_half_way(cluster, stream))
                    await wait_delivered(receiver, set(stream.accepted), upload_of, timeout=240)
            finally:
                if keep_logs is not None:
                    await asyncio.to_thread(copy_logs, Path(tmp), keep_logs)
                await asyncio.to_thread(cluster.close)
    finally:
        await receiver.stop()
        drop_database(database)
    return summarise(receiver, stream)


def copy_logs(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in source.glob("*.log"):
        shutil.copy(log, target / log.name)


def summarise(receiver: Receiver, stream: ClusterStream) -> ClusterResult:
    assert stream.stopped is not None and stream.stop_started is not None
    return ClusterResult(
        **tally(receiver, stream, upload_of),
        refused=dict(stream.refused),
        stopped=stream.stopped.name,
        accepted_after_stop=len(stream.accepted_since(stream.stop_started)),
        stop_seconds=(stream.stop_done or stream.stop_started) - stream.stop_started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--rate", type=float, default=40.0, help="uploads per second")
    parser.add_argument("--logs", type=Path, help="keep the services' logs in this folder")
    args = parser.parse_args()
    result = asyncio.run(run(args.uploads, args.rate, keep_logs=args.logs))
    refused = sum(result.refused.values())
    print(
        f"  stopped {result.stopped} (the stop took {result.stop_seconds:.1f} s); "
        f"{result.accepted_after_stop} uploads accepted after it began; {refused} refused "
        "(retried)",
        flush=True,
    )
    print(result.line(), flush=True)
    if result.lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
