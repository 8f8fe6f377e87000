"""`make run` brings up the whole system on this host, replicas too; Ctrl-C leaves nothing
listening."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp

from deploy.local.scale import PORT_STRIDE
from harness.infra import database_url_for, drop_database, unique_name
from harness.processes import REPO, wait_http_ok
from harness.receiver import Receiver
from harness.stack import free_port
from tests.test_original_flow import STEP_1, STEP_2, STEP_3, curl

SCALE = {"registration": 2, "upload": 2, "dispatcher": 2}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_block(size: int) -> int:
    """The first of `size` consecutive ports that are all free now."""
    for _ in range(50):
        base = free_port()
        if base + size <= 65535 and not any(listening(base + n) for n in range(size)):
            return base
    raise AssertionError("no block of free ports")


def replica_lines(output: str, process: str, event: str) -> int:
    """How many lines of `process` (e.g. registration.2) log `event`: the runner names each
    process's pid, and each JSON line its `instance` (host:pid)."""
    (pid,) = re.findall(rf"{re.escape(process)} started \(pid=(\d+)\)", output)
    return sum(
        1 for line in output.splitlines() if f':{pid}"' in line and f'"event":"{event}"' in line
    )


async def test_make_run_serves_the_original_flow_and_stops_cleanly(
    amqp_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    # The services' ports side by side, so that every replica's (port + 3n) is free too.
    base = free_block(PORT_STRIDE * max(SCALE.values()))
    ports = {
        "GATEWAY": free_port(),
        "REGISTRATION": base,
        "UPLOAD": base + 1,
        "DISPATCHER": base + 2,
    }
    replicas = {
        f"{name}.{n + 1}": ports[name.upper()] + n * PORT_STRIDE
        for name, count in SCALE.items()
        for n in range(count)
    }
    database = unique_name("webhooks_makerun")
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(database),
        "AMQP_URL": amqp_url,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "ALLOW_PRIVATE_URLS": "true",
        **{f"{name}_PORT": str(port) for name, port in ports.items()},
        "SCALE": " ".join(f"{name}={count}" for name, count in SCALE.items()),
    }
    log = (tmp_path / "make-run.log").open("wb")
    make = subprocess.Popen(
        ["make", "run"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    try:
        # Every replica answers its health on its own port.
        for port in replicas.values():
            await wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=60)
        await wait_http_ok(f"{gateway}/event_type", timeout=30)
        async with aiohttp.ClientSession() as http:
            for _ in range(8):
                async with http.get(f"{gateway}/event_type") as resp:
                    assert resp.status == 200

        listed = await curl(STEP_1, gateway)
        event_type_id = listed["data"][0]["id"]
        registered = await curl(
            STEP_2.replace("https://webhook-test.com/callback", receiver.url),
            gateway,
            **{"<event_type_id>": event_type_id},
        )
        assert registered["message"] == "Register Webhook Successfully!"
        picture = tmp_path / "file.jpg"
        picture.write_bytes(b"jpeg-ish")
        uploaded = await curl(
            STEP_3,
            gateway,
            **{"<webhook_id>": registered["data"]["id"], "/path/to/your/file.jpg": str(picture)},
        )
        assert uploaded["error"] is False
        (request,) = await receiver.wait_for(1, timeout=20)
        assert request.json()["data"]["upload_id"] == uploaded["data"]["upload_id"]
        # Health and metrics stay on the services' own ports.
        async with aiohttp.ClientSession() as http, http.get(f"{gateway}/healthz") as resp:
            assert resp.status == 404
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C does
        try:
            await asyncio.to_thread(make.wait, 20)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
            drop_database(database)
    for name, port in {**ports, **replicas}.items():
        assert not listening(port), f"{name} still listening on {port} after Ctrl-C"
    output = (tmp_path / "make-run.log").read_text()
    assert "registration.1 started" in output and "gateway.1 started" in output
    # The gateway balanced over both registration replicas.
    for process in ("registration.1", "registration.2"):
        assert replica_lines(output, process, "http_request") >= 2, process
    # A clean drain is not a failure: every process exited 0, and make says nothing.
    for name in [*replicas, "gateway.1"]:
        assert f"{name} stopped (rc=0)" in output, output[-3000:]
    assert "make: ***" not in output, output[-3000:]
