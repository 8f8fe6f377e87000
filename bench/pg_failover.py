"""`make pg-failover-test`: a stream of uploads and events while the PostgreSQL primary dies.

Starts a primary and a synchronous streaming standby of the installed PostgreSQL
(deploy/local/postgres_pair.py; the machine's own server is not touched), a RabbitMQ vhost
of its own, the three services as processes with DATABASE_URL naming both servers
(`target_session_attrs=read-write`) and AUTH_MODE=api_key, and a webhook receiver. It
sends uploads and events in turn at a steady rate straight to the upload service, stops the
primary with `pg_ctl -m immediate` half way, promotes the standby, keeps sending, waits for
every delivery, and prints as its last line `pg-failover: accepted N, delivered N, lost 0,
duplicates D, recovery S s`: accepted = 2xx answers (the commit reached the standby too,
so the item must survive), lost = accepted items whose delivery never arrived, duplicates =
extra receipts of one `webhook-id`, recovery = from the stop until the first delivery of an
item accepted after the promotion. Answers other than 2xx (503 while no server accepts
writes) are counted apart and the item is sent again. The registration and upload
services' LISTEN connections for key revocation must be back too (their logs say so).
Everything it started is removed at the end, on failure
too (`--logs DIR` keeps the services' logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.cluster import copy_logs, services
from bench.fault_stream import Stream, Tally, steady_stream, tally, wait_delivered
from deploy.local.postgres_pair import PostgresPair, running_pair
from harness.infra import VhostAdmin, amqp_url_for, unique_name
from harness.processes import REPO, service_env
from harness.receiver import Received, Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID
from services.common.migrate import apply_migrations, ensure_database

# Between the primary's death and the promotion, as a failover manager would take to notice.
PROMOTE_AFTER_SECONDS = 1.0


@dataclass
class FailoverResult(Tally):
    refused: dict[int, int]
    accepted_during_outage: int
    accepted_after_promotion: int
    outage_seconds: float
    listeners_back: dict[str, bool]

    def line(self) -> str:
        return f"pg-failover: {self.numbers()}"


@dataclass
class Target:
    """Where the stream goes: the upload service, as the key's holder."""

    upload_url: str
    headers: dict[str, str]
    webhook_id: str
    event_type: str


def item_of(received: Received) -> str:
    """What one item is called on both sides: its upload id, or its event's `item`."""
    data = received.json()["data"]
    return str(data.get("upload_id") or data.get("item"))


async def send_one(http: aiohttp.ClientSession, target: Target, n: int) -> tuple[int, str]:
    """An upload (even n) or an event (odd n); (status, item id)."""
    if n % 2 == 0:
        form = aiohttp.FormData()
        form.add_field("file", b"failover", filename="f.txt", content_type="text/plain")
        url = f"{target.upload_url}/upload_file/webhook_id/{target.webhook_id}"
        async with http.post(url, data=form, headers=target.headers) as resp:
            body = await resp.json(content_type=None)
            return resp.status, str(body.get("data", {}).get("upload_id", ""))
    item = uuid.uuid4().hex
    event = {"event_type": target.event_type, "user_id": 1, "payload": {"item": item}}
    async with http.post(f"{target.upload_url}/event", json=event, headers=target.headers) as resp:
        await resp.read()
        return resp.status, item


async def fail_over_half_way(pair: PostgresPair, stream: Stream, promote_after: float) -> None:
    await stream.half_way.wait()
    print(
        f"  stopping the primary (-m immediate) after {len(stream.accepted)} accepted ...",
        flush=True,
    )
    stream.stop_started = time.monotonic()
    await asyncio.to_thread(pair.stop_primary)
    await asyncio.sleep(promote_after)
    await asyncio.to_thread(pair.promote_standby)
    stream.stop_done = time.monotonic()
    print(
        f"  promoted {pair.standby.name} (port {pair.standby.port}) "
        f"{stream.stop_done - stream.stop_started:.1f} s after the stop",
        flush=True,
    )


def registration_command(database_url: str, *args: str) -> str:
    """Run `python -m services.registration ARGS` against the pair; its last line."""
    result = subprocess.run(
        [sys.executable, "-m", "services.registration", *args],
        cwd=REPO,
        env=service_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


async def prepare(
    http: aiohttp.ClientSession, ports: dict[str, int], key: str, receiver: Receiver
) -> Target:
    """An event type, and webhooks of user 1 for it and for uploads, all to the receiver."""
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{ports['registration']}"
    name = f"failover.{uuid.uuid4().hex[:10]}"
    async with http.post(f"{base}/event_type", json={"name": name}, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        type_id = (await resp.json())["data"]["id"]
    webhooks = []
    for event_type_id in (UPLOAD_EVENT_TYPE_ID, type_id):
        body = {"event_type_id": event_type_id, "user_id": 1, "url": receiver.url}
        async with http.post(f"{base}/webhook/register", json=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            webhooks.append((await resp.json())["data"]["id"])
    return Target(f"http://127.0.0.1:{ports['upload']}", headers, webhooks[0], name)


def listeners_back(workdir: Path) -> dict[str, bool]:
    """Per API service: did its key-revocation LISTEN connection come back after it was lost?"""
    back = {}
    for service in ("registration", "upload"):
        events = [
            line.get("event")
            for line in log_lines(workdir / f"{service}.log")
            if str(line.get("event", "")).startswith("revocation_listener_")
        ]
        up = "revocation_listener_up"
        back[service] = any(event != up for event in events) and events[-1] == up
    return back


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(raw))
    return lines


async def run(
    total: int = 500,
    rate: float = 40.0,
    workdir: Path | None = None,
    keep_logs: Path | None = None,
    promote_after: float = PROMOTE_AFTER_SECONDS,
) -> FailoverResult:
    vhosts = VhostAdmin()
    vhost = unique_name("webhooks_pg_failover")
    receiver = await Receiver().start()
    stream = Stream()
    listeners: dict[str, bool] = {}
    try:
        vhosts.create(vhost)
        with (
            tempfile.TemporaryDirectory(prefix="webhooks-pg-failover-", dir=workdir) as tmp,
            running_pair() as pair,
        ):
            print(
                f"pg-failover: primary on {pair.primary.port}, synchronous standby on "
                f"{pair.standby.port}, in {pair.base}",
                flush=True,
            )
            database_url = pair.database_url("webhooks")
            await asyncio.to_thread(ensure_database, database_url)
            await asyncio.to_thread(apply_migrations, database_url)
            key = await asyncio.to_thread(
                registration_command, database_url, "create-api-key", "--admin"
            )
            try:
                async with (
                    services(
                        database_url, amqp_url_for(vhost), Path(tmp), AUTH_MODE="api_key"
                    ) as ports,
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                ):
                    target = await prepare(http, ports, key, receiver)
                    print(f"  {total} uploads and events at {rate:g}/s", flush=True)
                    async with asyncio.TaskGroup() as group:
                        send = functools.partial(send_one, http, target)
                        group.create_task(steady_stream(send, stream, total, rate))
                        group.create_task(fail_over_half_way(pair, stream, promote_after))
                    await wait_delivered(receiver, set(stream.accepted), item_of, timeout=240)
                listeners = listeners_back(Path(tmp))
            finally:
                if keep_logs is not None:
                    await asyncio.to_thread(copy_logs, Path(tmp), keep_logs)
    finally:
        await receiver.stop()
        vhosts.delete(vhost)
    return summarise(receiver, stream, listeners)


def summarise(receiver: Receiver, stream: Stream, listeners: dict[str, bool]) -> FailoverResult:
    assert stream.stop_started is not None and stream.stop_done is not None
    after_promotion = stream.accepted_since(stream.stop_done)
    return FailoverResult(
        **tally(receiver, stream, item_of),
        refused=dict(stream.refused),
        accepted_during_outage=len(stream.accepted_since(stream.stop_started) - after_promotion),
        accepted_after_promotion=len(after_promotion),
        outage_seconds=stream.stop_done - stream.stop_started,
        listeners_back=listeners,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=500, help="uploads and events, in turn")
    parser.add_argument("--rate", type=float, default=40.0, help="items per second")
    parser.add_argument(
        "--promote-after", type=float, default=PROMOTE_AFTER_SECONDS, help="seconds"
    )
    parser.add_argument("--logs", type=Path, help="keep the services' logs in this folder")
    args = parser.parse_args()
    result = asyncio.run(run(args.items, args.rate, None, args.logs, args.promote_after))
    refused = ", ".join(f"{n} x {status or 'no answer'}" for status, n in result.refused.items())
    print(
        f"  primary down for {result.outage_seconds:.1f} s before the promotion; "
        f"{result.accepted_during_outage} accepted meanwhile, "
        f"{result.accepted_after_promotion} after; refused (sent again): {refused or 'none'}; "
        f"key-revocation listeners back: {result.listeners_back}",
        flush=True,
    )
    print(result.line(), flush=True)
    if result.lost or not all(result.listeners_back.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
