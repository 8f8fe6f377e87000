"""Idempotency-Key on uploads: a repeat within 24 h answers the first upload and adds nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.receiver import Receiver
from harness.stack import Stack, StackOptions
from services.common import uploads

NO_DISPATCHER = StackOptions(with_dispatcher=False)


def upload_folders(stack: Stack) -> list[Path]:
    return sorted(stack.upload_dir.iterdir())


async def upload(
    stack: Stack,
    webhook_id: str,
    key: str | None,
    content: bytes = b"hello",
    filename: str = "hello.txt",
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="text/plain")
    headers = {} if key is None else {"Idempotency-Key": key}
    async with stack.http.post(
        f"{stack.gateway_url}/upload_file/webhook_id/{webhook_id}", data=form, headers=headers
    ) as resp:
        return resp.status, await resp.json(), resp.headers


async def rows_for_key(stack: Stack, webhook_id: str, key: str) -> list[Any]:
    return await stack.pool.fetch(
        "SELECT * FROM uploads WHERE webhook_id = $1 AND idempotency_key = $2",
        uuid.UUID(webhook_id),
        key,
    )


async def counts(stack: Stack, webhook_id: str) -> tuple[int, int]:
    row = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM uploads WHERE webhook_id = $1) AS uploads,"
        " (SELECT count(*) FROM deliveries WHERE webhook_id = $1) AS deliveries",
        uuid.UUID(webhook_id),
    )
    return row["uploads"], row["deliveries"]


async def test_a_repeat_answers_the_first_upload_and_is_delivered_once(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url)
    key = f"order-{uuid.uuid4()}"
    status, first, first_headers = await upload(stack, webhook["id"], key, b"content")
    assert status == 200, first
    assert "Idempotent-Replayed" not in first_headers
    status, again, again_headers = await upload(stack, webhook["id"], key, b"content")
    assert status == 200, again
    assert again == first
    assert again_headers["Idempotent-Replayed"] == "true"

    assert await counts(stack, webhook["id"]) == (1, 1)
    assert [row["id"] for row in await rows_for_key(stack, webhook["id"], key)] == [
        uuid.UUID(first["data"]["upload_id"])
    ]
    # The repeat's copy of the file is gone; the first one stays.
    assert upload_folders(stack) == [stack.upload_dir / first["data"]["upload_id"]]
    assert (stack.upload_dir / first["data"]["upload_id"] / "hello.txt").read_bytes() == b"content"

    received = await receiver.wait_for(1)
    await asyncio.sleep(1.0)  # time enough for a second delivery, were there one
    assert len(receiver.received) == 1
    assert received[0].json()["data"]["upload_id"] == first["data"]["upload_id"]


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
async def test_the_same_key_on_another_webhook_is_another_upload(stack: Stack) -> None:
    one = await stack.register("http://127.0.0.1:9/one")
    two = await stack.register("http://127.0.0.1:9/two")
    status_one, first, _ = await upload(stack, one["id"], "shared-key")
    status_two, second, _ = await upload(stack, two["id"], "shared-key")
    assert (status_one, status_two) == (200, 200)
    assert first["data"]["upload_id"] != second["data"]["upload_id"]
    assert first["data"]["webhook_id"] == one["id"]
    assert second["data"]["webhook_id"] == two["id"]
    assert await counts(stack, one["id"]) == (1, 1)
    assert await counts(stack, two["id"]) == (1, 1)


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
async def test_concurrent_requests_with_one_key_make_one_upload(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    key = "concurrent-key"
    results = await asyncio.gather(
        *(upload(stack, webhook["id"], key, b"x" * 100_000, "same.bin") for _ in range(10))
    )
    assert [status for status, _, _ in results] == [200] * 10, results
    assert len({str(payload["data"]) for _, payload, _ in results}) == 1
    upload_id = results[0][1]["data"]["upload_id"]
    assert sum("Idempotent-Replayed" not in headers for _, _, headers in results) == 1
    assert await counts(stack, webhook["id"]) == (1, 1)
    outbox = await stack.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->'deliveries' @> $1::jsonb",
        [{"webhook_id": webhook["id"]}],
    )
    assert outbox <= 1  # published at once (deleted) or waiting for the relay
    assert upload_folders(stack) == [stack.upload_dir / upload_id]


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
async def test_a_key_older_than_a_day_makes_a_new_upload(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    key = "daily-report"
    _, first, _ = await upload(stack, webhook["id"], key)
    first_id = uuid.UUID(first["data"]["upload_id"])

    await stack.pool.execute(
        "UPDATE uploads SET created_at = now() - interval '23 hours' WHERE id = $1", first_id
    )
    _, still, headers = await upload(stack, webhook["id"], key)
    assert still == first and headers["Idempotent-Replayed"] == "true"

    await stack.pool.execute(
        "UPDATE uploads SET created_at = now() - interval '25 hours' WHERE id = $1", first_id
    )
    status, second, headers = await upload(stack, webhook["id"], key)
    assert status == 200, second
    assert "Idempotent-Replayed" not in headers
    second_id = uuid.UUID(second["data"]["upload_id"])
    assert second_id != first_id
    assert await counts(stack, webhook["id"]) == (2, 2)
    # The key now belongs to the new upload, and a repeat answers that one.
    assert [row["id"] for row in await rows_for_key(stack, webhook["id"], key)] == [second_id]
    _, third, headers = await upload(stack, webhook["id"], key)
    assert third == second and headers["Idempotent-Replayed"] == "true"
    assert await counts(stack, webhook["id"]) == (2, 2)
    assert {path.name for path in upload_folders(stack)} == {str(first_id), str(second_id)}


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
async def test_a_different_file_under_a_used_key_is_refused(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    _, first, _ = await upload(stack, webhook["id"], "k1", b"first file")
    status, payload, _ = await upload(stack, webhook["id"], "k1", b"another file")
    assert status == 422, payload
    assert payload["error"] is True
    assert "Idempotency-Key" in payload["message"] and "sha256" in payload["message"]
    assert first["data"]["upload_id"] in payload["message"]
    assert await counts(stack, webhook["id"]) == (1, 1)
    assert upload_folders(stack) == [stack.upload_dir / first["data"]["upload_id"]]


async def raw_upload(stack: Stack, webhook_id: str, key_header_lines: bytes) -> tuple[int, bytes]:
    """An upload sent byte by byte, so header values no HTTP client would send get through."""
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    body = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        b"data\r\n--b--\r\n"
    )
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /upload_file/webhook_id/{webhook_id} HTTP/1.1\r\nHost: {host}\r\n".encode()
        + key_header_lines
        + b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
@pytest.mark.parametrize(
    ("header_lines", "words"),
    [
        (b"Idempotency-Key: \r\n", "it is empty"),
        (b"Idempotency-Key: " + b"k" * 256 + b"\r\n", "256 characters"),
        ("Idempotency-Key: clé\r\n".encode(), "not printable ASCII"),
        (b"Idempotency-Key: a\tb\r\n", "not printable ASCII"),
        (b"Idempotency-Key: one\r\nIdempotency-Key: two\r\n", "sent once"),
    ],
)
async def test_an_invalid_key_is_400_and_stores_nothing(
    stack: Stack, header_lines: bytes, words: str
) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    status, body = await raw_upload(stack, webhook["id"], header_lines)
    assert status == 400, body
    assert b"Idempotency-Key" in body and words.encode() in body, body
    assert await counts(stack, webhook["id"]) == (0, 0)
    assert upload_folders(stack) == []


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
async def test_the_longest_valid_key_is_accepted(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    key = "".join(chr(32 + i % 95) for i in range(255)).strip()
    key = key + "x" * (255 - len(key))
    status, first, _ = await upload(stack, webhook["id"], key)
    assert status == 200, first
    _, again, _ = await upload(stack, webhook["id"], key)
    assert again == first


def upload_row(
    upload_id: uuid.UUID, webhook_id: uuid.UUID, key: str, age: timedelta
) -> tuple[Any, ...]:
    created_at = datetime.now(UTC) - age
    return (upload_id, webhook_id, "a.txt", "/x", 1, "0" * 64, "text/plain", key, None, created_at)


@pytest.mark.parametrize("stack_options", [NO_DISPATCHER])
@pytest.mark.parametrize("expired_holder", [False, True])
@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_a_claim_waits_for_the_transaction_that_holds_the_key(
    stack: Stack, expired_holder: bool, outcome: str
) -> None:
    """The race itself, step by step: B's claim waits for A's, then reads or replaces it."""
    webhook_id = uuid.UUID((await stack.register("http://127.0.0.1:9/unused"))["id"])
    key = "race"
    if expired_holder:
        old = upload_row(uuid.uuid4(), webhook_id, key, timedelta(hours=30))
        await stack.pool.execute(uploads.INSERT_UPLOAD, *old)
    first, second = uuid.uuid4(), uuid.uuid4()
    async with stack.pool.acquire() as a, stack.pool.acquire() as b:
        a_tx = a.transaction()
        await a_tx.start()
        claim_a = await uploads.claim_idempotency_key(
            a, webhook_id, key, upload_row(first, webhook_id, key, timedelta())
        )
        assert claim_a is None
        b_tx = b.transaction()
        await b_tx.start()
        claim_b = asyncio.create_task(
            uploads.claim_idempotency_key(
                b, webhook_id, key, upload_row(second, webhook_id, key, timedelta())
            )
        )
        await asyncio.sleep(0.3)
        assert not claim_b.done()
        await (a_tx.commit() if outcome == "commit" else a_tx.rollback())
        holder = await asyncio.wait_for(claim_b, 5)
        await b_tx.commit()
    if outcome == "commit":
        assert holder is not None and holder.upload_id == first
        assert [row["id"] for row in await rows_for_key(stack, str(webhook_id), key)] == [first]
    else:
        assert holder is None
        assert [row["id"] for row in await rows_for_key(stack, str(webhook_id), key)] == [second]
