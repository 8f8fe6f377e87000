"""The whole system for one test: three services in-process and the real nginx gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
from aiohttp import web

from deploy.gateway.render import TEMP_DIRS, render_local_config, template_values
from deploy.local.prereqs import find_nginx
from services.common import system_events
from services.common.broker import declare_topology
from services.common.db import create_pool
from services.common.messages import (
    DEAD_LETTER_QUEUE,
    DELAY_BUCKETS_MS,
    DISPATCH_QUEUE,
    FANOUT_QUEUE,
    delay_queue_name,
)
from services.common.protocol import answer_parser_errors_with_envelopes
from services.common.web import HTTP_PARSER_LIMITS
from services.dispatcher.app import create_app as create_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.registration.app import create_app as create_registration
from services.registration.settings import RegistrationSettings
from services.upload.app import create_app as create_upload
from services.upload.settings import UploadSettings

UPLOAD_EVENT_TYPE_ID = str(system_events.UPLOAD_EVENT_TYPE_ID)


async def register_webhook(
    http: aiohttp.ClientSession, gateway_url: str, url: str, **fields: Any
) -> dict[str, Any]:
    """Register `url` for uploads (user 1 unless given) and return the registration."""
    body = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1, "url": url, **fields}
    async with http.post(f"{gateway_url}/webhook/register", json=body) as resp:
        payload: dict[str, Any] = await resp.json()
        assert resp.status == 200, payload
        return payload["data"]  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def purge_queues(amqp_url: str) -> None:
    """Leftovers of an earlier test (parked retries) must not reach this one."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel)
        names = [DISPATCH_QUEUE, FANOUT_QUEUE, *map(delay_queue_name, DELAY_BUCKETS_MS)]
        for name in names:
            queue = await channel.get_queue(name, ensure=False)
            await queue.purge()
        # The dispatcher declares it with the bound of this test's settings.
        await channel.queue_delete(DEAD_LETTER_QUEUE)


async def dead_letters(amqp_url: str) -> list[bytes]:
    """Bodies of the messages in the dead-letter queue (left in place)."""
    connection = await aio_pika.connect(amqp_url)
    bodies: list[bytes] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE, ensure=False)
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            bodies.append(message.body)
        await channel.close()  # unacked messages go back
    return bodies


class Gateway:
    """nginx with the rendered production template, pointed at the in-process services."""

    def __init__(
        self,
        runtime_dir: Path,
        env: dict[str, str],
        replicas: dict[str, list[int]] | None = None,
        values: dict[str, str] | None = None,
    ) -> None:
        self.runtime_dir = runtime_dir
        self.env = env
        # Each service's replica ports; by default the one port its *_PORT names.
        self.replicas = replicas
        # The template's values as they are, instead of those of `env` and `replicas`.
        self.values = values
        self.port = int((values or env)["GATEWAY_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        nginx = find_nginx()
        assert nginx is not None, "nginx is required: apt-get install -y nginx"
        for name in TEMP_DIRS:
            (self.runtime_dir / name).mkdir(parents=True, exist_ok=True)
            (self.runtime_dir / name).chmod(0o777)
        logs = self.runtime_dir / "logs"
        logs.mkdir(exist_ok=True)
        config = self.runtime_dir / "nginx.conf"
        values = self.values or template_values(self.env, self.replicas)
        config.write_text(render_local_config(values, self.runtime_dir, logs))
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.runtime_dir), "-c", str(config), "-e", "stderr"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await wait_for_port(self.port)
        except OSError:
            self.process.kill()
            _, err = self.process.communicate()
            raise AssertionError(f"nginx did not start: {err.decode()}") from None
        # Whatever listens must be nginx, not another listener that took the port first.
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{self.port}/") as r:
            server = r.headers.get("Server", "")
        if server != "nginx":
            await self.stop()
            raise AssertionError(f"port {self.port} is answered by {server!r}, not nginx")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


@dataclass
class Stack:
    gateway_url: str
    registration_url: str
    upload_url: str
    dispatcher_url: str
    pool: asyncpg.Pool
    http: aiohttp.ClientSession
    upload_dir: Path
    amqp_url: str
    database_url: str

    async def register(self, url: str, **fields: Any) -> dict[str, Any]:
        return await register_webhook(self.http, self.gateway_url, url, **fields)

    async def upload(
        self, webhook_id: str, content: bytes = b"hello", filename: str = "hello.txt"
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("file", content, filename=filename, content_type="text/plain")
        async with self.http.post(
            f"{self.gateway_url}/upload_file/webhook_id/{webhook_id}", data=form
        ) as resp:
            payload: dict[str, Any] = await resp.json()
            assert resp.status == 200, payload
            return payload["data"]  # type: ignore[no-any-return]

    async def delivery_for_upload(self, upload_id: str) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT * FROM deliveries WHERE upload_id = $1", uuid.UUID(upload_id)
        )
        assert row is not None
        return row

    async def wait_for_status(
        self, delivery_id: Any, status: str, timeout: float = 20.0
    ) -> asyncpg.Record:
        deadline = time.monotonic() + timeout
        while True:
            row = await self.pool.fetchrow("SELECT * FROM deliveries WHERE id = $1", delivery_id)
            if row is not None and row["status"] == status:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"delivery {delivery_id} is {row and row['status']}, not {status}"
                )
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class StackOptions:
    retry_schedule: tuple[float, ...] = (1.0, 1.0, 1.0)
    delivery_timeout_seconds: float = 5.0
    registration_allow_private: bool = True
    dispatcher_allow_private: bool = True
    max_upload_bytes: int = 104857600
    max_json_bytes: int = 65536
    with_dispatcher: bool = True
    disable_after_seconds: float = 5 * 86400.0
    per_endpoint_concurrency: int = 32
    # Security (SECURITY.md): off by default so tests can hammer the API.
    auth_mode: str = "none"
    auth_cache_seconds: float = 5.0
    secrets_keys: tuple[str, ...] = ()
    rate_limit_per_second: float = 0.0
    gateway_rate_per_second: int = 10000
    gateway_rate_burst: int = 20000
    delivery_proxy_url: str = ""
    dead_letter_max_length: int = DispatcherSettings.dead_letter_max_length
    dead_letter_max_age_seconds: int = DispatcherSettings.dead_letter_max_age_seconds


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    answer_parser_errors_with_envelopes()  # as services.common.runner.serve does
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, **HTTP_PARSER_LIMITS)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@contextlib.asynccontextmanager
async def running_stack(
    database_url: str, amqp_url: str, workdir: Path, options: StackOptions | None = None
) -> AsyncIterator[Stack]:
    options = options or StackOptions()
    await purge_queues(amqp_url)
    common: dict[str, Any] = {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "shutdown_grace_seconds": 2.0,
        "auth_mode": options.auth_mode,
        "auth_cache_seconds": options.auth_cache_seconds,
        "rate_limit_per_second": options.rate_limit_per_second,
    }
    upload_dir = workdir / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    # Chosen before registration starts: its portal links lead to the gateway. Held bound
    # until nginx starts, so no service below is given the same port by the kernel.
    gateway_socket = socket.socket()
    gateway_socket.bind(("127.0.0.1", 0))
    gateway_port = int(gateway_socket.getsockname()[1])
    registration = create_registration(
        RegistrationSettings(
            **common,
            allow_private_urls=options.registration_allow_private,
            max_json_bytes=options.max_json_bytes,
            secrets_keys=options.secrets_keys,
            public_url=f"http://127.0.0.1:{gateway_port}",
        )
    )
    upload = create_upload(
        UploadSettings(
            **common,
            upload_dir=upload_dir,
            max_upload_bytes=options.max_upload_bytes,
            max_json_bytes=options.max_json_bytes,
        )
    )
    dispatcher_settings = DispatcherSettings(
        **common,
        retry_schedule=options.retry_schedule,
        delivery_timeout_seconds=options.delivery_timeout_seconds,
        allow_private_urls=options.dispatcher_allow_private,
        sweep_interval_seconds=3600,
        disable_after_seconds=options.disable_after_seconds,
        per_endpoint_concurrency=options.per_endpoint_concurrency,
        secrets_keys=options.secrets_keys,
        delivery_proxy_url=options.delivery_proxy_url,
        dead_letter_max_length=options.dead_letter_max_length,
        dead_letter_max_age_seconds=options.dead_letter_max_age_seconds,
    )
    runners: list[web.AppRunner] = []
    gateway: Gateway | None = None
    pool = await create_pool(database_url)
    http = aiohttp.ClientSession()
    try:
        reg_runner, reg_port = await _serve(registration)
        runners.append(reg_runner)
        up_runner, up_port = await _serve(upload)
        runners.append(up_runner)
        dis_port = 0
        if options.with_dispatcher:
            dis_runner, dis_port = await _serve(create_dispatcher(dispatcher_settings))
            runners.append(dis_runner)
        gateway = Gateway(
            workdir / "gateway",
            {
                "GATEWAY_PORT": str(gateway_port),
                "REGISTRATION_PORT": str(reg_port),
                "UPLOAD_PORT": str(up_port),
                "MAX_UPLOAD_BYTES": str(options.max_upload_bytes),
                "MAX_JSON_BYTES": str(options.max_json_bytes),
                "GATEWAY_RATE_PER_SECOND": str(options.gateway_rate_per_second),
                "GATEWAY_RATE_BURST": str(options.gateway_rate_burst),
            },
        )
        gateway_socket.close()
        await gateway.start()
        stack = Stack(
            gateway_url=f"http://127.0.0.1:{gateway.port}",
            registration_url=f"http://127.0.0.1:{reg_port}",
            upload_url=f"http://127.0.0.1:{up_port}",
            dispatcher_url=f"http://127.0.0.1:{dis_port}",
            pool=pool,
            http=http,
            upload_dir=upload_dir,
            amqp_url=amqp_url,
            database_url=database_url,
        )
        await wait_ready(stack, options.with_dispatcher)
        yield stack
    finally:
        gateway_socket.close()
        if gateway is not None:
            await gateway.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        await http.close()
        await pool.close()


async def wait_ready(stack: Stack, with_dispatcher: bool, timeout: float = 15.0) -> None:
    urls = [stack.registration_url, stack.upload_url]
    if with_dispatcher:
        urls.append(stack.dispatcher_url)
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            async with stack.http.get(f"{url}/readyz") as resp:
                if resp.status == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} not ready")
            await asyncio.sleep(0.05)


__all__ = ["Stack", "StackOptions", "dead_letters", "replace", "running_stack"]
