"""Two replicas of every service behind the real gateway: load spreads, nothing is sent twice,
and kill -9 of a dispatcher and of an upload replica mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from dnslib import QTYPE, RR, A, DNSRecord
from dnslib.server import DNSServer

from harness.events import create_event_type, insert_webhooks, new_event, new_secret
from harness.infra import create_database, drop_database, unique_name
from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver, Reply
from harness.stack import Gateway, free_port, purge_queues
from services.common import events, outbox
from services.common.broker import Broker
from services.common.db import create_pool
from services.upload.fanout.worker import FanoutWorker
from services.upload.relay.outbox_cleanup import OutboxCleanup
from tests.test_deployment_static import environment, load_compose

CLIENTS = 8
UPLOADS_PER_PHASE = 150
# What a real client retries: the gateway's 503 (a replica went away mid-request), a refused
# or reset connection. The same Idempotency-Key makes a retry of an accepted upload
# answer the same upload instead of making a second one.
RETRIED_STATUSES = {502, 503}
RESOLVER_VALID_SECONDS = 1
# A resend after a timed-out attempt is at-least-once working as meant, not what these tests
# look for: on a busy 2-core machine the attempt timeout is kept out of reach. (A killed
# dispatcher's claims are taken over when their lease, the timeout and a margin, ends.)
SLOW_MACHINE = {"DELIVERY_TIMEOUT_SECONDS": "30"}
KILLED_LEASE = {"DELIVERY_TIMEOUT_SECONDS": "10"}


@dataclass
class Uploads:
    accepted: set[str] = field(default_factory=set)
    retries: int = 0


async def upload_until_accepted(stack: ProcessStack, webhook_id: str, uploads: Uploads) -> None:
    key = str(uuid.uuid4())
    for _ in range(20):
        try:
            status, body = await stack.upload(webhook_id, b"replicas", {"Idempotency-Key": key})
        except (aiohttp.ClientConnectionError, TimeoutError):
            status, body = 503, {}
        if status == 200:
            uploads.accepted.add(body["data"]["upload_id"])
            return
        assert status in RETRIED_STATUSES, (status, body)
        uploads.retries += 1
        await asyncio.sleep(0.2)
    raise AssertionError(f"upload {key} never accepted")


async def upload_many(stack: ProcessStack, webhook_id: str, count: int, uploads: Uploads) -> None:
    queue = iter(range(count))

    async def client() -> None:
        for _ in queue:
            await upload_until_accepted(stack, webhook_id, uploads)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def per_instance(stack: ProcessStack, service: str, event: str) -> collections.Counter[str]:
    """How many `event` lines each instance of `service` logged."""
    return collections.Counter(
        line["instance"]
        for line in stack.log_lines(service)
        if line.get("event") == event and line.get("service") == service
    )


async def wait_none_pending(stack: ProcessStack, webhook_id: str) -> dict[str, int]:
    """The webhook's delivery statuses once none is pending (its outcome recorded)."""
    deadline = time.monotonic() + 90
    while (statuses := await stack.delivery_statuses(webhook_id)).get("pending"):
        assert time.monotonic() < deadline, statuses
        await asyncio.sleep(0.2)
    return statuses


def arrivals(receiver: Receiver) -> dict[str, list[float]]:
    """Arrival times of every delivery, by webhook-id (one delivery, one id)."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    for request in receiver.received:
        times[request.headers["webhook-id"]].append(request.at)
    return times


def delivered_uploads(receiver: Receiver) -> set[str]:
    return {request.json()["data"]["upload_id"] for request in receiver.received}


async def wait_delivered(receiver: Receiver, uploads: Uploads, timeout: float = 90) -> None:
    async with asyncio.timeout(timeout):
        while missing := uploads.accepted - delivered_uploads(receiver):
            print(f"waiting for {len(missing)} deliveries")
            await asyncio.sleep(0.5)


async def test_two_replicas_of_each_share_the_load_and_kill_9_loses_nothing(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await Receiver([Reply(200, delay=0.05)]).start()
    steady, stormy = Uploads(), Uploads()
    try:
        async with process_stack(
            database_url, amqp_url, tmp_path, replicas=2, LOG_SUCCESS_SAMPLE="1", **KILLED_LEASE
        ) as stack:
            webhook = await stack.register(receiver.url)
            for _ in range(10):
                async with stack.http.get(f"{stack.gateway_url}/webhook/{webhook['id']}") as resp:
                    assert resp.status == 200

            # Steady: every replica alive, so every delivery is sent exactly once.
            await upload_many(stack, webhook["id"], UPLOADS_PER_PHASE, steady)
            await wait_delivered(receiver, steady)
            steady_sent = arrivals(receiver)
            registration = per_instance(stack, "registration", "http_request")
            upload = per_instance(stack, "upload", "http_request")
            dispatcher = per_instance(stack, "dispatcher", "delivery_attempt")

            # Stormy: one dispatcher and one upload replica die mid-stream.
            await upload_many(stack, webhook["id"], UPLOADS_PER_PHASE // 3, stormy)
            uploading = asyncio.create_task(
                upload_many(stack, webhook["id"], UPLOADS_PER_PHASE - len(stormy.accepted), stormy)
            )
            await asyncio.sleep(0.3)
            await asyncio.gather(stack.kill9("dispatcher.2"), stack.kill9("upload.2"))
            killed_at = time.monotonic()
            await uploading
            await wait_delivered(receiver, stormy)
            after_kill = per_instance(stack, "upload", "http_request")
            # What the killed dispatcher had claimed is sent again once its lease ends.
            statuses = await wait_none_pending(stack, webhook["id"])
    finally:
        await receiver.stop()

    print(f"registration requests per instance: {dict(registration)}")
    print(f"upload requests per instance: {dict(upload)}")
    print(f"delivery attempts per dispatcher: {dict(dispatcher)}")
    print(f"stormy phase: {len(stormy.accepted)} accepted, {stormy.retries} retries")
    # Requests reached both replicas of each service, deliveries both dispatchers.
    for counts in (registration, upload, dispatcher):
        assert len(counts) == 2 and min(counts.values()) > 0, counts
    assert sum(dispatcher.values()) == UPLOADS_PER_PHASE
    # Steady: one request per delivery.
    assert len(steady.accepted) == UPLOADS_PER_PHASE
    assert all(len(times) == 1 for times in steady_sent.values())
    assert len(steady_sent) == UPLOADS_PER_PHASE
    # Stormy: every accepted upload delivered, and the survivors took over.
    assert len(stormy.accepted) == UPLOADS_PER_PHASE
    assert stormy.accepted <= delivered_uploads(receiver)
    assert sum(after_kill.values()) > sum(upload.values())
    # A delivery arrives twice only if the killed dispatcher had sent it before it died.
    sent = arrivals(receiver)
    twice = {delivery: times for delivery, times in sent.items() if len(times) > 1}
    print(f"stormy phase: {len(twice)} deliveries sent twice, all claimed before the kill")
    assert all(min(times) < killed_at for times in twice.values()), twice
    assert statuses == {"succeeded": 2 * UPLOADS_PER_PHASE}


def logged_counts(stack: ProcessStack, service: str, event: str) -> collections.Counter[str]:
    """The `count` fields of `event` lines, summed per instance of `service`."""
    counts: collections.Counter[str] = collections.Counter()
    for line in stack.log_lines(service):
        if line.get("event") == event:
            counts[line["instance"]] += line["count"]
    return counts


@pytest.fixture
def own_database_url() -> Iterator[str]:
    """A database of this test's own: the sweepers republish every stalled delivery they
    find, and other tests of the session leave some behind in the shared one."""
    name = unique_name("webhooks_replicas")
    yield create_database(name)
    drop_database(name)


async def test_relay_and_sweeper_in_both_replicas_at_once_publish_each_message_once(
    own_database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    """Both upload replicas relay the same outbox and both dispatchers sweep the same stalled
    deliveries, at once and often: each row is published by one relay (SKIP LOCKED), each
    stalled delivery republished by one sweeper (advisory lock), and each sent once."""
    database_url = own_database_url
    receiver = await Receiver().start()
    relayed, swept = Uploads(), Uploads()
    try:
        async with process_stack(
            database_url,
            amqp_url,
            tmp_path,
            replicas=2,
            OUTBOX_RELAY_INTERVAL_SECONDS="0.1",
            SWEEP_INTERVAL_SECONDS="0.2",
            LOG_SUCCESS_SAMPLE="1",  # each attempt's line is counted
            **SLOW_MACHINE,
        ) as stack:
            webhook = await stack.register(receiver.url)

            # The broker away: uploads are accepted into the outbox, which both relays
            # then drain together when it is back.
            stack.broker_proxy.cut()
            await upload_many(stack, webhook["id"], 60, relayed)
            in_outbox, announced = await stack.pool.fetchrow(
                "SELECT count(*), sum(jsonb_array_length(payload->'deliveries')) FROM outbox"
            )
            stack.broker_proxy.restore()
            await wait_delivered(receiver, relayed)
            await wait_none_pending(stack, webhook["id"])

            # Messages lost between recording and publishing: pending deliveries long past
            # due with no message anywhere, which both sweepers find at the same moment.
            stack.broker_proxy.cut()
            await upload_many(stack, webhook["id"], 40, swept)
            async with stack.pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM outbox")
                stalled = await conn.fetchval(
                    """
                    WITH made AS (
                        UPDATE deliveries SET next_retry_at = now() - interval '1 hour'
                        WHERE webhook_id = $1 AND status = 'pending' RETURNING 1
                    ) SELECT count(*) FROM made
                    """,
                    uuid.UUID(webhook["id"]),
                )
            stack.broker_proxy.restore()
            await wait_delivered(receiver, swept)
            relay_counts = logged_counts(stack, "upload", "outbox_relayed")
            sweep_counts = logged_counts(stack, "dispatcher", "stalled_deliveries_republished")
            attempts = per_instance(stack, "dispatcher", "delivery_attempt")
            outcomes = collections.Counter(
                (line.get("outcome"), line.get("error"))
                for line in stack.log_lines("dispatcher")
                if line.get("event") == "delivery_attempt"
            )
    finally:
        await receiver.stop()

    print(f"relayed per upload replica: {dict(relay_counts)} of {in_outbox} outbox rows")
    print(f"republished per dispatcher: {dict(sweep_counts)} of {stalled} stalled deliveries")
    # Uploads recorded together share an outbox row (one message announces them all).
    assert announced == len(relayed.accepted) == 60
    assert 1 <= in_outbox <= 60
    assert sum(relay_counts.values()) == in_outbox
    assert stalled == len(swept.accepted) == 40
    assert sum(sweep_counts.values()) == stalled
    # One request per delivery, one attempt per upload: nothing was sent twice.
    sent = arrivals(receiver)
    twice = {delivery: len(times) for delivery, times in sent.items() if len(times) > 1}
    assert len(sent) == 100 and not twice, (twice, outcomes)
    assert sum(attempts.values()) == 100, outcomes


class Names:
    """A DNS server on 127.0.0.1 (as Docker's is at 127.0.0.11) answering each name with the
    addresses a test sets, as Docker's DNS answers a compose service with its replicas."""

    def __init__(self) -> None:
        self.addresses: dict[str, list[str]] = {}
        self.port = free_udp_port()
        self.server = DNSServer(self, address="127.0.0.1", port=self.port)

    def close(self) -> None:
        self.server.stop()
        self.server.server.server_close()  # stop() leaves the socket open

    def resolve(self, request: DNSRecord, _handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        if request.q.qtype == QTYPE.A:
            for address in self.addresses.get(name, []):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def replica(address: str, port: int) -> web.AppRunner:
    """A stand-in registration replica that answers with its own address."""

    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({"replica": address})

    app = web.Application()
    app.router.add_get("/event_type", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner


async def answered_by(http: aiohttp.ClientSession, gateway: str, requests: int) -> set[str]:
    replicas = set()
    for _ in range(requests):
        async with http.get(f"{gateway}/event_type") as resp:
            assert resp.status == 200, await resp.text()
            replicas.add((await resp.json())["replica"])
    return replicas


async def until_answered_by(http: aiohttp.ClientSession, gateway: str, replicas: set[str]) -> None:
    """Requests until every one of `replicas` answers: the cached name expires after
    `valid=` (counted in whole seconds, so up to twice that), then nginx asks again."""
    deadline = time.monotonic() + 10 * RESOLVER_VALID_SECONDS
    while (answered := await answered_by(http, gateway, 10)) != replicas:
        assert time.monotonic() < deadline, f"only {answered} answer, after 10 x valid="


async def test_the_compose_gateway_follows_replicas_by_name_without_a_restart(
    tmp_path: Path,
) -> None:
    """compose's rendering of the gateway, with its resolver pointed at a DNS server of ours:
    replicas that appear get traffic, and one that disappears costs no failed request."""
    port = free_port()
    names = Names()
    names.server.start_thread()
    values = environment(load_compose()["services"]["gateway"])
    assert values["REGISTRATION_BACKEND"].startswith("registration:")
    # Compose's resolver line, pointed at our server and made quicker.
    dns = f"127.0.0.1:{names.port}"
    discovery = values["SERVICE_DISCOVERY"].replace("127.0.0.11", dns)
    discovery = re.sub(r"valid=\d+s", f"valid={RESOLVER_VALID_SECONDS}s", discovery)
    assert dns in discovery
    values.update(
        GATEWAY_PORT=str(free_port()),
        SERVICE_DISCOVERY=discovery,
        REGISTRATION_BACKEND=f"registration:{port}",
    )
    addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    names.addresses["registration"] = addresses[:2]
    replicas = {address: await replica(address, port) for address in addresses}
    gateway = Gateway(tmp_path / "gateway", {}, values=values)
    try:
        await gateway.start()
        url = f"http://127.0.0.1:{gateway.port}"
        async with aiohttp.ClientSession() as http:
            assert await answered_by(http, url, 20) == set(addresses[:2])
            # `docker compose up --scale registration=3`: the new name is asked for again.
            names.addresses["registration"] = addresses
            await until_answered_by(http, url, set(addresses))
            # One replica stops before DNS forgets it: nginx skips it, no request fails.
            await replicas.pop(addresses[0]).cleanup()
            assert await answered_by(http, url, 30) == set(addresses[1:])
            names.addresses["registration"] = addresses[1:]
            await asyncio.sleep(RESOLVER_VALID_SECONDS * 2)
            assert await answered_by(http, url, 30) == set(addresses[1:])
        assert gateway.process is not None and gateway.process.poll() is None
    finally:
        await gateway.stop()
        for runner in replicas.values():
            await runner.cleanup()
        names.close()


async def test_two_fan_out_workers_on_one_event_make_each_delivery_once(
    database_url: str, amqp_url: str
) -> None:
    """The fan-out sweep of every upload replica may ask for the same event again, so two
    workers can fan it out at once: each delivery is made, and announced, by one of them."""
    webhooks = 1200  # three batches of the fan-out, so that the workers interleave
    pools = [await create_pool(database_url) for _ in range(2)]
    broker = Broker(amqp_url)
    await broker.start()
    try:
        await broker.wait_ready(10)
        type_id, name = await create_event_type(pools[0])
        await insert_webhooks(pools[0], webhooks, 77, type_id, "http://127.0.0.1:9/", new_secret())
        async with pools[0].acquire() as conn:
            accepted = await events.accept(conn, new_event(type_id, name, 77, {"n": 1}))
        assert isinstance(accepted, events.AcceptedEvent) and accepted.outbox_id is not None
        await outbox.delete(pools[0], [accepted.outbox_id])  # the sweep's copy stands in
        workers = [FanoutWorker(pool, broker, OutboxCleanup(pool), 5.0) for pool in pools]
        created = await asyncio.gather(*(worker.fan_out(accepted.id) for worker in workers))
        made = await pools[0].fetchval(
            "SELECT count(*) FROM deliveries WHERE event_id = $1", accepted.id
        )
        # Nobody is to send these (the receiver does not exist); no later test may either.
        await pools[0].execute(
            "UPDATE deliveries SET status = 'cancelled' WHERE event_id = $1", accepted.id
        )
    finally:
        await broker.close()
        for pool in pools:
            await pool.close()
        await purge_queues(amqp_url)
    print(f"fan-out of one event by two workers at once: {created} deliveries made")
    assert made == webhooks
    assert sum(created) == webhooks
