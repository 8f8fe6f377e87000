"""The bench's own stack: the three services as processes, the nginx gateway, a database
and a RabbitMQ vhost of its own (removed afterwards), and receivers in processes of their own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import loadgen
from bench.config import bench_env
from bench.profiler import Profiler
from harness.infra import (
    VhostAdmin,
    amqp_url_for,
    create_database,
    drop_database,
    unique_name,
)
from harness.processes import REPO, start_service, stop_process, wait_http_ok
from harness.stack import Gateway, free_port, register_webhook

SERVICES = ("registration", "upload", "dispatcher")


@dataclass
class Receiver:
    """A bench.receiver process and the bench's one connection to it."""

    port: int
    process: subprocess.Popen[bytes]
    mode: str
    # The bench's questions to the receiver (its figures, a reset), one at a time over one
    # keep-alive connection of the load client: the polls are frequent.
    link: loadgen.Connection | None = None
    asking: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ask(self, method: str, path: str) -> tuple[int, bytes]:
        async with self.asking:
            if self.link is None:
                self.link = loadgen.Connection(self.port)
            return await self.link.send(loadgen.build_request(method, self.port, path))

    async def stats(self) -> dict[str, Any]:
        status, body = await self.ask("GET", "/stats")
        assert status == 200, status
        stats: dict[str, Any] = orjson.loads(body)
        return stats

    async def summary(self) -> dict[str, Any]:
        """The counts alone, without a figure per delivery: cheap to poll."""
        status, body = await self.ask("GET", "/stats?summary=1")
        assert status == 200, status
        summary: dict[str, Any] = orjson.loads(body)
        return summary

    async def reset(self) -> None:
        status, _ = await self.ask("POST", "/reset")
        assert status == 204, status

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


class Bench:
    """One run's stack: its services, gateway, receivers, database and vhost, and its ports."""

    def __init__(self, workdir: Path, env_overrides: dict[str, str]) -> None:
        self.workdir = workdir
        self.database = unique_name("webhooks_bench")
        self.vhost = unique_name("webhooks_bench")
        self.admin = VhostAdmin()
        self.ports = {service: free_port() for service in SERVICES}
        self.env_overrides = env_overrides
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.receivers: list[Receiver] = []
        self.gateway: Gateway | None = None
        self.http: aiohttp.ClientSession | None = None
        self.profiler: Profiler | None = None

    @property
    def gateway_url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}"

    def env(self) -> dict[str, str]:
        return bench_env(
            DATABASE_URL=self.database_url,
            AMQP_URL=amqp_url_for(self.vhost),
            UPLOAD_DIR=str(self.workdir / "uploads"),
            REGISTRATION_PORT=str(self.ports["registration"]),
            UPLOAD_PORT=str(self.ports["upload"]),
            DISPATCHER_PORT=str(self.ports["dispatcher"]),
            **self.env_overrides,
        )

    async def start(self) -> None:
        self.database_url = create_database(self.database)
        self.admin.create(self.vhost)
        for service in SERVICES:
            await self.start_service(service)
        self.gateway = Gateway(
            self.workdir / "gateway", {**self.env(), "GATEWAY_PORT": str(free_port())}
        )
        await self.gateway.start()
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=120)
        )

    async def start_service(self, service: str) -> None:
        self.processes[service] = start_service(
            service, self.env(), self.workdir / f"{service}.log"
        )
        await wait_http_ok(f"http://127.0.0.1:{self.ports[service]}/readyz", timeout=30)
        if self.profiler is not None:  # follow the new process
            self.profiler.follow(service, self.processes[service].pid)

    def start_profiling(self, folder: Path | None) -> None:
        """py-spy on each service into `folder` (none without one) until stop_profiling."""
        if folder is not None:
            self.profiler = Profiler(folder, self.processes)

    def stop_profiling(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None

    async def restart_service(self, service: str) -> None:
        await asyncio.to_thread(stop_process, self.processes[service], 30)
        await self.start_service(service)

    async def dispatcher_metrics(self) -> dict[str, float]:
        """Means of the dispatcher's timings since it (last) started, in ms, and its deferrals."""
        assert self.http is not None
        url = f"http://127.0.0.1:{self.ports['dispatcher']}/metrics"
        async with self.http.get(url) as resp:
            text = await resp.text()
        sums: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.endswith(("_seconds_sum", "_seconds_count", "_deferred_total")):
                sums[name] = float(value)
        means = {}
        for name in ("webhook_delivery_dispatch", "webhook_delivery_attempt_duration"):
            count = sums.get(f"{name}_seconds_count", 0.0)
            if count:
                means[f"{name}_mean_ms"] = sums[f"{name}_seconds_sum"] / count * 1000
        # Deliveries parked because their endpoint had its limit in flight (each ~1 s late).
        deferred = "webhook_deliveries_deferred_total"
        means[deferred] = sums.get(deferred, 0.0)
        return means

    async def receiver(self, mode: str, delay: float = 1.0) -> Receiver:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.receiver",
                "--port",
                str(port),
                "--mode",
                mode,
                "--delay",
                str(delay),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        receiver = Receiver(port, process, mode)
        await wait_http_ok(f"{receiver.url}/stats")
        self.receivers.append(receiver)
        return receiver

    async def stop(self) -> None:
        """Every step runs even if one before it failed: nothing may outlive the bench."""
        steps: list[Callable[[], Awaitable[object]]] = []
        if self.http is not None:
            steps.append(self.http.close)
        for receiver in self.receivers:
            receiver.close()
            receiver.process.kill()  # the dead one never answers: no graceful stop to wait for
            steps.append(lambda r=receiver: asyncio.to_thread(r.process.wait, 10))
        if self.gateway is not None:
            steps.append(self.gateway.stop)
        for process in self.processes.values():
            steps.append(lambda p=process: asyncio.to_thread(stop_process, p, 30))
        steps.append(lambda: asyncio.to_thread(self.admin.delete, self.vhost))
        steps.append(lambda: asyncio.to_thread(drop_database, self.database))
        errors = []
        for step in steps:
            try:
                await step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def register(self, url: str) -> str:
        assert self.http is not None
        return str((await register_webhook(self.http, self.gateway_url, url))["id"])

    async def delete_webhook(self, webhook_id: str) -> None:
        """Its pending deliveries are cancelled as they come up (no more attempts)."""
        assert self.http is not None
        async with self.http.delete(f"{self.gateway_url}/webhook/{webhook_id}") as resp:
            assert resp.status in (200, 204), await resp.text()

    @property
    def gateway_port(self) -> int:
        assert self.gateway is not None
        return self.gateway.port
