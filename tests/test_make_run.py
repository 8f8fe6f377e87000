"""`make run` brings up the whole system on this host; Ctrl-C leaves nothing listening."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp

from harness.infra import database_url_for, drop_database, unique_name
from harness.processes import REPO, wait_http_ok
from harness.receiver import Receiver
from harness.stack import free_port
from tests.test_original_flow import STEP_1, STEP_2, STEP_3, curl


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_make_run_serves_the_original_flow_and_stops_cleanly(
    amqp_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "REGISTRATION", "UPLOAD", "DISPATCHER")}
    database = unique_name("webhooks_makerun")
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(database),
        "AMQP_URL": amqp_url,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "ALLOW_PRIVATE_URLS": "true",
        **{f"{name}_PORT": str(port) for name, port in ports.items()},
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
        await wait_http_ok(f"http://127.0.0.1:{ports['DISPATCHER']}/readyz", timeout=60)
        await wait_http_ok(f"http://127.0.0.1:{ports['UPLOAD']}/readyz", timeout=30)
        await wait_http_ok(f"{gateway}/event_type", timeout=30)

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
    for name, port in ports.items():
        assert not listening(port), f"{name} still listening on {port} after Ctrl-C"
    output = (tmp_path / "make-run.log").read_text()
    assert "registration.1 started" in output and "gateway.1 started" in output
    # A clean drain is not a failure: every process exited 0, and make says nothing.
    for name in ("registration", "upload", "dispatcher", "gateway"):
        assert f"{name}.1 stopped (rc=0)" in output, output[-3000:]
    assert "make: ***" not in output, output[-3000:]
