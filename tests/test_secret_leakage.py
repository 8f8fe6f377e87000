"""Endpoint secrets (SPEC §17) stay secret: with SECRETS_KEY set, no password, client secret
or private key appears in the database, the services' JSON logs, their trace spans, or any
API answer, while deliveries use them all."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.procstack import ProcessStack, process_stack
from harness.receiver import Receiver
from harness.stack import UPLOAD_EVENT_TYPE_ID
from tests.test_endpoint_auth import (
    CLIENT_SECRET,
    PASSWORD,
    TlsReceiver,
    TokenServer,
    accepting_tokens_of,
    basic,
    issued,
    oauth2,
    requiring,
)
from tests.test_security import OLD_SECRETS_KEY
from tests.test_tracing import Collector

NEW_PASSWORD = "a second password 7d1e"
WRONG_SECRET = "a wrong client secret 0b9a"


class Answers:
    """Calls the API through the gateway and keeps the text of every answer."""

    def __init__(self, stack: ProcessStack) -> None:
        self.stack = stack
        self.texts: list[str] = []

    async def __call__(self, method: str, path: str, body: Any = None) -> Any:
        async with self.stack.http.request(
            method, f"{self.stack.gateway_url}{path}", json=body
        ) as resp:
            self.texts.append(await resp.text())
            return resp.status, await resp.json()


async def database_text(stack: ProcessStack) -> str:
    """Every row of every table as text, as a plain-SQL dump would hold it."""
    tables = await stack.pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    texts = []
    for table in tables:
        rows = await stack.pool.fetch(f'SELECT t::text AS row FROM "{table["tablename"]}" t')
        texts.extend(row["row"] for row in rows)
    return "\n".join(texts)


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    server = await Collector().start()
    yield server
    await server.stop()


async def test_no_endpoint_secret_leaks(
    database_url: str, amqp_url: str, tmp_path: Path, collector: Collector
) -> None:
    server_ca_pem, _, server_ca_name, server_ca_key = issued("server CA", None, ca=True)
    client_ca_pem, _, client_ca_name, client_ca_key = issued("client CA", None, ca=True)
    certificate, private_key, _, _ = issued("hooks client", (client_ca_name, client_ca_key))
    key_lines = private_key.strip().splitlines()[1:-1]  # the base64 body, line by line
    secrets = [PASSWORD, NEW_PASSWORD, CLIENT_SECRET, WRONG_SECRET, private_key, *key_lines]

    tls_receiver = await TlsReceiver(
        (server_ca_name, server_ca_key), client_ca_pem, tmp_path
    ).start()
    basic_receiver, bearer_receiver = await Receiver().start(), await Receiver().start()
    token_server = await TokenServer().start()
    requiring(basic_receiver, basic("hooks", NEW_PASSWORD))
    accepting_tokens_of(bearer_receiver, token_server)
    try:
        async with process_stack(
            database_url,
            amqp_url,
            tmp_path,
            SECRETS_KEY=OLD_SECRETS_KEY,
            LOG_LEVEL="debug",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            RETRY_SCHEDULE="",
        ) as stack:
            call = Answers(stack)
            base = {"event_type_id": UPLOAD_EVENT_TYPE_ID, "user_id": 1}
            bodies = {
                "basic": {
                    "url": basic_receiver.url,
                    "auth": {"type": "basic", "username": "hooks", "password": PASSWORD},
                },
                "oauth2": {"url": bearer_receiver.url, "auth": oauth2(token_server)},
                "wrong": {"url": bearer_receiver.url, "auth": oauth2(token_server, WRONG_SECRET)},
                "mtls": {
                    "url": tls_receiver.url,
                    "tls_client_certificate": {
                        "certificate": certificate,
                        "private_key": private_key,
                    },
                    "tls_ca": server_ca_pem,
                },
            }
            ids = {}
            for name, body in bodies.items():
                status, answer = await call("POST", "/webhook/register", {**base, **body})
                assert status == 200, answer
                ids[name] = answer["data"]["id"]
            # Refusals must not echo what they refuse either.
            bad = {"type": "basic", "username": "hooks", "password": PASSWORD + "\n"}
            status, _ = await call(
                "POST", "/webhook/register", {**base, "url": basic_receiver.url, "auth": bad}
            )
            assert status == 400
            status, _ = await call(
                "PATCH",
                f"/webhook/{ids['basic']}",
                {"auth": {"type": "basic", "username": "hooks", "password": NEW_PASSWORD}},
            )
            assert status == 200

            deliveries = {}
            for name, webhook_id in ids.items():
                status, answer = await stack.upload(webhook_id)
                assert status == 200, answer
                deliveries[name] = answer["data"]["upload_id"]
            for name, upload_id in deliveries.items():
                expected = "failed" if name == "wrong" else "succeeded"
                await wait_for_delivery(stack, upload_id, expected)

            await call("GET", "/webhook?user_id=1")
            for webhook_id in ids.values():
                await call("GET", f"/webhook/{webhook_id}")
                await call("PATCH", f"/webhook/{webhook_id}", {"timeout_seconds": 7})
                status, page = await call("GET", f"/webhook/{webhook_id}/deliveries")
                for delivery in page["data"]:
                    await call("GET", f"/delivery/{delivery['id']}")
            await collector.wait_for(
                "attempt spans of every delivery",
                lambda spans: (
                    sum(s.kind == 3 and "webhooks.attempt" in s.attributes for s in spans)
                    >= len(deliveries)
                ),
            )
            dumped = await database_text(stack)
            logs = {s: stack.raw_logs(s) for s in ("registration", "upload", "dispatcher")}
    finally:
        for server in (tls_receiver, basic_receiver, bearer_receiver, token_server):
            await server.stop()

    assert "token request to" in dumped  # the wrong secret's attempt, in words
    assert len(token_server.requests) >= 2 and logs["dispatcher"]
    spans = [f"{span.name} {span.attributes}" for span in collector.spans]
    places = {
        "database": [dumped],
        "API answers": call.texts,
        "spans": spans,
        **{f"{service} log": [text] for service, text in logs.items()},
    }
    for place, texts in places.items():
        for text in texts:
            for secret in secrets:
                assert secret not in text, f"{place} holds a secret ({secret[:12]}…)"


async def wait_for_delivery(stack: ProcessStack, upload_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        found = await stack.pool.fetchval(
            "SELECT status FROM deliveries WHERE upload_id = $1", uuid.UUID(upload_id)
        )
        if found == status:
            return
        assert time.monotonic() < deadline, f"delivery of {upload_id} is {found}, not {status}"
        await asyncio.sleep(0.1)
