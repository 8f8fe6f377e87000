"""Ordered delivery per key (SPEC section 16): one at a time in acceptance order per webhook
and key, with two dispatchers and a kill -9; a failed one lets the next go; the key's
validation on POST /event and uploads."""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect

from harness.events import create_event_type, fresh_user_id, insert_webhooks, new_secret
from harness.infra import create_database, drop_database, unique_name
from harness.procstack import ProcessStack, process_stack
from harness.receiver import serve_on_loopback
from harness.stack import Stack, StackOptions
from services.common import system_events
from services.upload.fanout.worker import INLINE_WEBHOOKS
from tests.test_console import CHROMIUM, LIVE_MS, sign_in

KEYS = 50
EVENTS_PER_KEY = 100
FAILURE_RATE = 0.1
# Failures of one event at most: with this schedule every event succeeds in the end.
FAILURES_PER_EVENT = 2
QUICK_RETRIES = "0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3"


@dataclass(frozen=True)
class Arrival:
    at: float
    key: str
    n: int
    delivery_id: str
    status: int
    data: dict[str, Any]
    path: str = ""


@dataclass
class OrderedReceiver:
    """A real endpoint on 127.0.0.1 that records each request's key and number (from the
    event's data) and answers `reply(arrival_number_of_this_event, data)`."""

    reply: Callable[[int, dict[str, Any]], int]
    arrivals: list[Arrival] = field(default_factory=list)
    hold: dict[int, asyncio.Event] = field(default_factory=dict)
    seen: collections.Counter[str] = field(default_factory=collections.Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        data = body["data"]
        delivery_id = request.headers["webhook-id"]
        number = self.seen[delivery_id]
        self.seen[delivery_id] += 1
        status = self.reply(number, data)
        if "n" in data and data["n"] in self.hold:
            await self.hold[data["n"]].wait()
        self.arrivals.append(
            Arrival(
                time.monotonic(),
                data.get("key", ""),
                data.get("n", -1),
                delivery_id,
                status,
                data,
                request.path_qs,
            )
        )
        self.changed.set()
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self) -> OrderedReceiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        for event in self.hold.values():
            event.set()
        if self.runner is not None:
            await self.runner.cleanup()

    async def wait_for(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.arrivals) < count:
                self.changed.clear()
                await self.changed.wait()

    def first_successes(self) -> dict[str, list[Arrival]]:
        """Per key, each event's first successful arrival, in arrival order."""
        firsts: dict[str, list[Arrival]] = collections.defaultdict(list)
        done: set[str] = set()
        for arrival in self.arrivals:
            if arrival.status == 200 and arrival.delivery_id not in done:
                done.add(arrival.delivery_id)
                firsts[arrival.key].append(arrival)
        return firsts


async def call(
    http: aiohttp.ClientSession, base: str, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, f"{base}{path}", json=body, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def event_type_and_webhook(
    http: aiohttp.ClientSession, base: str, url: str, user_id: int
) -> tuple[str, str]:
    name = f"subscription.changed.{uuid.uuid4().hex[:8]}"
    status, created = await call(http, base, "POST", "/event_type", {"name": name})
    assert status == 201, created
    body = {"event_type_id": created["data"]["id"], "user_id": user_id, "url": url}
    status, webhook = await call(http, base, "POST", "/webhook/register", body)
    assert status == 200, webhook
    return name, webhook["data"]["id"]


async def publish(
    http: aiohttp.ClientSession, base: str, event_type: str, user_id: int, key: str, n: int
) -> str:
    """Publish event `n` of `key` until accepted (a replica dying mid-request is retried)."""
    body = {
        "event_type": event_type,
        "user_id": user_id,
        "payload": {"key": key, "n": n},
        "ordering_key": key,
    }
    for _ in range(20):
        try:
            status, answer = await call(http, base, "POST", "/event", body)
        except (aiohttp.ClientConnectionError, TimeoutError):
            status, answer = 503, {}
        if status == 202:
            return str(answer["data"]["event_id"])
        assert status in (502, 503), answer
        await asyncio.sleep(0.2)
    raise AssertionError(f"event {key}/{n} never accepted")


# --- many keys, two dispatchers, one killed ---------------------------------------------------


@pytest.fixture
def own_database_url() -> Iterator[str]:
    """A database of this test's own: its sweeper runs every 2 s and would republish what
    other tests of the session left pending in the shared one."""
    name = unique_name("webhooks_ordering")
    yield create_database(name)
    drop_database(name)


def flaky(seed: int) -> Callable[[int, dict[str, Any]], int]:
    """About FAILURE_RATE of requests answered 500, never more than FAILURES_PER_EVENT
    times for one event."""
    chance = random.Random(seed)

    def reply(number: int, data: dict[str, Any]) -> int:
        if number < FAILURES_PER_EVENT and chance.random() < FAILURE_RATE:
            return 500
        return 200

    return reply


async def wait_all_succeeded(stack: ProcessStack, webhook_id: str, total: int) -> None:
    async with asyncio.timeout(600):
        while (statuses := await stack.delivery_statuses(webhook_id)).get("succeeded") != total:
            print(f"deliveries: {statuses}")
            await asyncio.sleep(2)


@pytest.mark.timeout(900)
async def test_each_key_in_order_with_two_dispatchers_a_failing_endpoint_and_kill_9(
    own_database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    receiver = await OrderedReceiver(flaky(27)).start()
    user_id = fresh_user_id()
    keys = [f"customer-{k}" for k in range(KEYS)]
    started = time.monotonic()
    try:
        async with process_stack(
            own_database_url,
            amqp_url,
            tmp_path,
            replicas=2,
            RETRY_SCHEDULE=QUICK_RETRIES,
            SWEEP_INTERVAL_SECONDS="2",
        ) as stack:
            base = stack.gateway_url
            event_type, webhook_id = await event_type_and_webhook(
                stack.http, base, receiver.url, user_id
            )

            async def publish_key(key: str) -> None:
                for n in range(EVENTS_PER_KEY):
                    await publish(stack.http, base, event_type, user_id, key, n)

            publishing = asyncio.gather(*(publish_key(key) for key in keys))
            # Midway through the deliveries, one dispatcher dies.
            await receiver.wait_for(KEYS * EVENTS_PER_KEY // 2, timeout=300)
            await stack.kill9("dispatcher.2")
            killed_at = len(receiver.arrivals)
            await publishing
            await wait_all_succeeded(stack, webhook_id, KEYS * EVENTS_PER_KEY)
            rows = await stack.pool.fetch(
                "SELECT id::text, ordering_key, waiting_for FROM deliveries WHERE webhook_id = $1",
                uuid.UUID(webhook_id),
            )
            waits = [
                line
                for line in stack.log_lines("dispatcher")
                if line.get("event") == "delivery_waiting"
            ]
    finally:
        await receiver.stop()
    elapsed = time.monotonic() - started
    failures = [arrival for arrival in receiver.arrivals if arrival.status != 200]
    print(
        f"{KEYS * EVENTS_PER_KEY} events over {KEYS} keys: {len(receiver.arrivals)} requests, "
        f"{len(failures)} answered 500, dispatcher.2 killed after {killed_at}, "
        f"{len(waits)} waits logged, {elapsed:.0f} s in all"
    )

    # Nothing lost: every event of every key succeeded, and nothing else arrived.
    firsts = receiver.first_successes()
    assert sorted(firsts) == sorted(keys)
    key_of = {row["id"]: row["ordering_key"] for row in rows}
    assert len(key_of) == KEYS * EVENTS_PER_KEY
    assert all(row["waiting_for"] is None for row in rows)
    # Per key, the first successful arrival of each event is in publish order.
    for key in keys:
        assert [arrival.n for arrival in firsts[key]] == list(range(EVENTS_PER_KEY)), key
    # One at a time: no request of an event before the previous one of its key succeeded
    # (a request the killed dispatcher had sent may come again, never a later one early).
    succeeded_at = {a.delivery_id: a.at for arrivals in firsts.values() for a in arrivals}
    first_success_of = {(a.key, a.n): a.at for arrivals in firsts.values() for a in arrivals}
    for arrival in receiver.arrivals:
        if arrival.n > 0:
            assert arrival.at >= first_success_of[arrival.key, arrival.n - 1], arrival
    # A delivery only ever waited behind one of its own key...
    assert waits
    for line in waits:
        assert key_of[line["delivery_id"]] == key_of[line["waiting_for"]], line
    # ...so a failure held back its own key only: while one key's event was failing
    # (from its 500 to its success), the other keys went on succeeding.
    for failure in failures[:50]:
        window = (failure.at, succeeded_at[failure.delivery_id])
        others = [
            a.key
            for arrivals in firsts.values()
            for a in arrivals
            if a.key != failure.key and window[0] < a.at < window[1]
        ]
        assert others, failure


# --- a failed delivery lets the next go ---------------------------------------------------------


# The first request is held open while the test looks: the timeout is kept out of reach.
HELD = StackOptions(retry_schedule=(0.3, 0.3), delivery_timeout_seconds=60)


@pytest.mark.parametrize("stack_options", [HELD])
@pytest.mark.timeout(300)
async def test_a_key_whose_delivery_fails_lets_the_next_go_seen_in_api_console_and_event(
    stack: Stack,
) -> None:
    user_id = fresh_user_id()
    # Event 0 of the key always fails; its first request is held until the test has seen
    # the next one waiting behind it.
    receiver = OrderedReceiver(lambda number, data: 500 if data.get("n") == 0 else 200)
    receiver.hold[0] = asyncio.Event()
    await receiver.start()
    failed_events = await OrderedReceiver(lambda number, data: 200).start()
    base = stack.gateway_url
    try:
        event_type, _ = await event_type_and_webhook(stack.http, base, receiver.url, user_id)
        body = {
            "event_type_id": str(system_events.DELIVERY_FAILED_TYPE_ID),
            "user_id": user_id,
            "url": failed_events.url,
        }
        status, answer = await call(stack.http, base, "POST", "/webhook/register", body)
        assert status == 200, answer
        first = await publish(stack.http, base, event_type, user_id, "customer-1", 0)
        second = await publish(stack.http, base, event_type, user_id, "customer-1", 1)
        other = await publish(stack.http, base, event_type, user_id, "customer-2", 2)
        first_id, second_id = [await delivery_of(stack, event) for event in (first, second)]

        # The second waits behind the first, which is in flight; another key is not held.
        waiting = await wait_for_delivery(stack, second_id, lambda d: d["waiting_for"])
        assert waiting["waiting_for"] == first_id
        assert waiting["ordering_key"] == "customer-1"
        assert waiting["status"] == "pending" and waiting["attempts"] == []
        other_id = await delivery_of(stack, other)
        done = await wait_for_delivery(stack, other_id, lambda d: d["status"] == "succeeded")
        assert done["ordering_key"] == "customer-2" and done["waiting_for"] is None
        await console_shows(stack, user_id, second_id, "customer-1", first_id)

        receiver.hold[0].set()
        failed = await wait_for_delivery(stack, first_id, lambda d: d["status"] != "pending")
        assert failed["status"] == "failed" and len(failed["attempts"]) == 3
        went = await wait_for_delivery(stack, second_id, lambda d: d["status"] != "pending")
        assert went["status"] == "succeeded" and went["waiting_for"] is None
        # It went after the first had failed: its only request came after the last 500.
        last_failure = max(a.at for a in receiver.arrivals if a.n == 0)
        (sent,) = [a for a in receiver.arrivals if a.n == 1]
        assert sent.at > last_failure
        # The first one's end was announced.
        await failed_events.wait_for(1, timeout=20)
        (announced,) = failed_events.arrivals
        assert announced.data["delivery_id"] == first_id
        assert announced.data["attempts"] == 3
        rows = await stack.pool.fetch(
            "SELECT payload FROM events WHERE user_id = $1 AND event_type_id = $2",
            user_id,
            system_events.DELIVERY_FAILED_TYPE_ID,
        )
        assert [row["payload"]["delivery_id"] for row in rows] == [first_id]
        await console_shows(stack, user_id, second_id, "customer-1", None)
    finally:
        await receiver.stop()
        await failed_events.stop()


async def delivery_of(stack: Stack, event_id: str) -> str:
    status, answer = await call(stack.http, stack.gateway_url, "GET", f"/event/{event_id}")
    assert status == 200, answer
    (delivery,) = answer["data"]["deliveries"]
    return str(delivery["id"])


async def wait_for_delivery(
    stack: Stack, delivery_id: str, done: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            status, answer = await call(
                stack.http, stack.gateway_url, "GET", f"/delivery/{delivery_id}"
            )
            assert status == 200, answer
            if done(answer["data"]):
                return answer["data"]  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def console_shows(
    stack: Stack, user_id: int, delivery_id: str, key: str, ahead: str | None
) -> None:
    """The console's delivery page shows the key, and what it waits behind (a link)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await sign_in(page, stack, "User id", str(user_id))
            await page.evaluate(f"location.hash = '#/deliveries/{delivery_id}'")
            await expect(page.locator("dt:text-is('Ordering key') + dd")).to_have_text(key)
            waiting = page.locator("dt:text-is('Waiting for') + dd")
            if ahead is None:
                await expect(waiting).to_have_text("nothing", timeout=LIVE_MS)
            else:
                await expect(waiting).to_have_text(ahead, timeout=LIVE_MS)
                await expect(waiting.get_by_role("link")).to_have_attribute(
                    "href", f"#/deliveries/{ahead}"
                )
        finally:
            await browser.close()


# --- the key's validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordering_key", "problem"),
    [("", "at least 1 character"), ("k" * 201, "at most 200 characters"), (7, "string")],
)
async def test_a_bad_ordering_key_on_an_event_is_400_naming_it(
    stack: Stack, ordering_key: Any, problem: str
) -> None:
    body = {"event_type": "a", "user_id": 1, "payload": {}, "ordering_key": ordering_key}
    status, answer = await call(stack.http, stack.gateway_url, "POST", "/event", body)
    assert status == 400, answer
    assert "ordering_key" in answer["message"] and problem in answer["message"]


async def test_an_ordering_key_of_200_characters_is_kept_on_the_delivery(stack: Stack) -> None:
    user_id = fresh_user_id()
    event_type, _ = await event_type_and_webhook(
        stack.http, stack.gateway_url, "http://127.0.0.1:9/hook", user_id
    )
    event = await publish(stack.http, stack.gateway_url, event_type, user_id, "k" * 200, 0)
    delivery = await wait_for_delivery(stack, await delivery_of(stack, event), lambda d: True)
    assert delivery["ordering_key"] == "k" * 200


async def upload(
    stack: Stack, webhook_id: str, content: bytes, headers: Any
) -> tuple[int, dict[str, Any]]:
    """A one-file upload to the webhook with these headers; (status, answer)."""
    form = aiohttp.FormData()
    form.add_field("file", content, filename="f.txt", content_type="text/plain")
    path = f"/upload_file/webhook_id/{webhook_id}"
    return await call(stack.http, stack.gateway_url, "POST", path, data=form, headers=headers)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ([("Ordering-Key", "k" * 201)], "1 to 200 characters; it is 201 characters long"),
        ([("Ordering-Key", "a"), ("Ordering-Key", "b")], "must be sent once, got 2"),
    ],
)
async def test_a_bad_ordering_key_header_on_an_upload_is_400_naming_it(
    stack: Stack, headers: list[tuple[str, str]], problem: str
) -> None:
    webhook = await stack.register("http://127.0.0.1:9/hook")
    status, answer = await upload(stack, webhook["id"], b"x", headers)
    assert status == 400, answer
    assert answer["message"].startswith("Ordering-Key header must") and problem in answer["message"]


async def test_uploads_with_one_ordering_key_go_one_at_a_time_in_order(stack: Stack) -> None:
    receiver = await OrderedReceiver(lambda number, data: 200).start()
    try:
        webhook = await stack.register(receiver.url)
        uploads = []
        for n in range(5):
            status, answer = await upload(
                stack, webhook["id"], str(n).encode(), {"Ordering-Key": "batch-7"}
            )
            assert status == 200, answer
            uploads.append(answer["data"]["upload_id"])
        rows = [await stack.delivery_for_upload(upload) for upload in uploads]
        for row in rows:
            await stack.wait_for_status(row["id"], "succeeded")
    finally:
        await receiver.stop()
    assert [row["ordering_key"] for row in rows] == ["batch-7"] * 5
    assert [row["ordering_seq"] for row in rows] == sorted(row["ordering_seq"] for row in rows)
    arrived = [a.delivery_id for a in receiver.arrivals]
    assert arrived == [str(row["id"]) for row in rows]


async def test_events_fanned_out_by_the_worker_keep_their_order_per_webhook(stack: Stack) -> None:
    """More webhooks than the request fans out itself: the worker makes the deliveries,
    after the answer, in any order; each webhook still gets the key's events in order."""
    receiver = await OrderedReceiver(lambda number, data: 200).start()
    user_id = fresh_user_id()
    webhooks = INLINE_WEBHOOKS + 1
    events = 6
    try:
        type_id, type_name = await create_event_type(stack.pool)
        ids = await insert_webhooks(
            stack.pool, webhooks, user_id, type_id, receiver.url, new_secret()
        )
        for n, webhook_id in enumerate(ids):
            await stack.pool.execute(
                "UPDATE webhook_registrations SET url = $2 WHERE id = $1",
                webhook_id,
                f"{receiver.url}?webhook={n}",
            )
        for n in range(events):
            await publish(stack.http, stack.gateway_url, type_name, user_id, "customer-9", n)
        await receiver.wait_for(webhooks * events, timeout=60)
    finally:
        await receiver.stop()
    per_webhook: dict[str, list[int]] = collections.defaultdict(list)
    for arrival in receiver.arrivals:
        per_webhook[arrival.path].append(arrival.n)
    assert len(per_webhook) == webhooks
    assert all(order == list(range(events)) for order in per_webhook.values()), per_webhook


async def test_a_redelivered_earlier_event_is_simply_sent_again(stack: Stack) -> None:
    """Redeliver the first of a key after the second was delivered: the first is sent again,
    the second is not; a third published after goes once the first has (again)."""
    receiver = await OrderedReceiver(lambda number, data: 200).start()
    user_id = fresh_user_id()
    base = stack.gateway_url
    try:
        event_type, _ = await event_type_and_webhook(stack.http, base, receiver.url, user_id)
        first, second = [
            await publish(stack.http, base, event_type, user_id, "customer-3", n) for n in (0, 1)
        ]
        await receiver.wait_for(2, timeout=30)
        first_id = await delivery_of(stack, first)
        status, answer = await call(stack.http, base, "POST", f"/delivery/{first_id}/redeliver")
        assert status == 202, answer
        await receiver.wait_for(3, timeout=30)
        third = await publish(stack.http, base, event_type, user_id, "customer-3", 2)
        third_id = await delivery_of(stack, third)
        await wait_for_delivery(stack, third_id, lambda d: d["status"] == "succeeded")
        await wait_for_delivery(stack, first_id, lambda d: d["status"] == "succeeded")
    finally:
        await receiver.stop()
    assert [a.n for a in receiver.arrivals] == [0, 1, 0, 2]
    assert [a.delivery_id for a in receiver.arrivals].count(await delivery_of(stack, second)) == 1
