"""The system as real processes, reaching PostgreSQL and RabbitMQ through proxies that can cut."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from harness.processes import service_env, start_service, stop_process, wait_http_ok
from harness.proxy import TcpProxy
from harness.stack import Gateway, free_port, purge_queues, register_webhook

SERVICES = ("registration", "upload", "dispatcher")


def via_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


@dataclass
class ProcessStack:
    workdir: Path
    env: dict[str, str]
    database_proxy: TcpProxy
    broker_proxy: TcpProxy
    pool: asyncpg.Pool
    http: aiohttp.ClientSession
    gateway: Gateway
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_path(self, service: str) -> Path:
        return self.workdir / f"{service}.{self.generation.get(service, 0)}.log"

    async def start(self, service: str, wait: bool = True, **overrides: str) -> None:
        """Start `service`, or one more replica of it named like `upload.2`."""
        self.generation[service] = self.generation.get(service, -1) + 1
        module = service.split(".")[0]
        env = {**self.env, f"{module.upper()}_PORT": str(self.ports[service]), **overrides}
        self.processes[service] = start_service(module, env, self.log_path(service))
        if wait:
            await wait_http_ok(f"{self.url(service)}/readyz", timeout=30)

    # The proxies run on this process's event loop: never block it while waiting.
    async def kill9(self, service: str) -> None:
        process = self.processes[service]
        os.killpg(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)

    async def terminate(self, service: str, timeout: float = 40.0) -> int:
        return await asyncio.to_thread(stop_process, self.processes[service], timeout)

    def log_lines(self, service: str) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.workdir.glob(f"{service}.*.log")):
            for raw in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    lines.append(json.loads(raw))
        return lines

    def raw_logs(self, service: str) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in sorted(self.workdir.glob(f"{service}.*.log"))
        )

    async def register(self, url: str, **fields: Any) -> dict[str, Any]:
        return await register_webhook(self.http, self.gateway_url, url, **fields)

    async def upload(
        self, webhook_id: str, content: bytes = b"x", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        form.add_field("file", content, filename="f.txt", content_type="text/plain")
        async with self.http.post(
            f"{self.gateway_url}/upload_file/webhook_id/{webhook_id}",
            data=form,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def delivery_statuses(self, webhook_id: str) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT status, count(*) AS n FROM deliveries WHERE webhook_id = $1 GROUP BY status",
            uuid.UUID(webhook_id),
        )
        return {row["status"]: row["n"] for row in rows}


def replica_names(replicas: int) -> list[str]:
    """Every service's processes: the first named for its service, the others `upload.2`…"""
    return [
        service if n == 1 else f"{service}.{n}"
        for service in SERVICES
        for n in range(1, replicas + 1)
    ]


@contextlib.asynccontextmanager
async def process_stack(
    database_url: str, amqp_url: str, workdir: Path, replicas: int = 1, **env_overrides: str
) -> AsyncIterator[ProcessStack]:
    """The services as processes (`replicas` of each) behind the real gateway."""
    await purge_queues(amqp_url)
    db_target = urlsplit(database_url)
    amqp_target = urlsplit(amqp_url)
    database_proxy = await TcpProxy(
        db_target.hostname or "127.0.0.1", db_target.port or 5432
    ).start()
    broker_proxy = await TcpProxy(
        amqp_target.hostname or "127.0.0.1", amqp_target.port or 5672
    ).start()
    names = replica_names(replicas)
    ports = {name: free_port() for name in names}
    settings = {
        "DATABASE_URL": via_proxy(database_url, database_proxy.port),
        "AMQP_URL": via_proxy(amqp_url, broker_proxy.port),
        "UPLOAD_DIR": str(workdir / "uploads"),
        "ALLOW_PRIVATE_URLS": "true",
        "RETRY_SCHEDULE": "1,1,2,2,5",
        "DELIVERY_TIMEOUT_SECONDS": "5",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "REGISTRATION_PORT": str(ports["registration"]),
        "UPLOAD_PORT": str(ports["upload"]),
        "DISPATCHER_PORT": str(ports["dispatcher"]),
    }
    # A test's overrides win over these defaults.
    env = service_env(**{**settings, **env_overrides})
    gateway = Gateway(
        workdir / "gateway",
        {
            "GATEWAY_PORT": str(free_port()),
            "REGISTRATION_PORT": str(ports["registration"]),
            "UPLOAD_PORT": str(ports["upload"]),
        },
        {
            service: [port for name, port in ports.items() if name.split(".")[0] == service]
            for service in ("registration", "upload")
        },
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    http = aiohttp.ClientSession()
    stack = ProcessStack(workdir, env, database_proxy, broker_proxy, pool, http, gateway, ports)
    try:
        for name in names:
            await stack.start(name)
        await gateway.start()
        yield stack
    finally:
        await asyncio.gather(
            *(asyncio.to_thread(stop_process, process, 15) for process in stack.processes.values())
        )
        await gateway.stop()
        await http.close()
        await pool.close()
        await database_proxy.stop()
        await broker_proxy.stop()
