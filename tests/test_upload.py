"""Uploads: streamed to disk, measured, recorded; every bad request a clear 4xx and no leftovers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from urllib3 import encode_multipart_formdata

from harness.stack import Stack, StackOptions
from services.common.api.shapes import PART_NAME_PATTERN
from services.upload.ingest import db as upload_db

SMALL_LIMIT = StackOptions(max_upload_bytes=1000, with_dispatcher=False)


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


async def table_counts(stack: Stack) -> tuple[int, int, int]:
    row = await stack.pool.fetchrow(
        "SELECT (SELECT count(*) FROM uploads) AS uploads,"
        " (SELECT count(*) FROM deliveries) AS deliveries,"
        " (SELECT count(*) FROM outbox) AS outbox"
    )
    return row["uploads"], row["deliveries"], row["outbox"]


async def settled_counts(stack: Stack) -> tuple[int, int, int]:
    """table_counts once the relay has published what earlier requests left in the outbox
    (their rows go when the broker confirms: a count taken before that would drop under a
    request that added nothing)."""
    deadline = asyncio.get_running_loop().time() + 10
    counts = await table_counts(stack)
    while counts[2] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        counts = await table_counts(stack)
    return counts


async def post_form(
    stack: Stack, webhook_id: str, form: aiohttp.FormData | bytes, **kwargs: object
) -> tuple[int, dict[str, object]]:
    async with stack.http.post(
        f"{stack.gateway_url}/upload_file/webhook_id/{webhook_id}", data=form, **kwargs
    ) as resp:
        return resp.status, await resp.json()


async def test_upload_is_stored_measured_and_recorded(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    content = bytes(range(256)) * 1000
    data = await stack.upload(webhook["id"], content, "data.bin")
    assert data["size"] == len(content)
    assert data["sha256"] == hashlib.sha256(content).hexdigest()
    assert data["webhook_id"] == webhook["id"]
    assert data["content_type"] == "text/plain"
    stored = stack.upload_dir / data["upload_id"] / "data.bin"
    assert stored.read_bytes() == content
    row = await stack.pool.fetchrow(
        "SELECT * FROM uploads WHERE id = $1", uuid.UUID(data["upload_id"])
    )
    assert row["size"] == len(content) and row["sha256"] == data["sha256"]
    delivery = await stack.delivery_for_upload(data["upload_id"])
    assert delivery["webhook_id"] == uuid.UUID(webhook["id"])
    assert delivery["event_data"]["sha256"] == data["sha256"]


async def test_empty_file_is_a_valid_upload(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    data = await stack.upload(webhook["id"], b"", "empty.txt")
    assert data["size"] == 0
    assert data["sha256"] == hashlib.sha256(b"").hexdigest()


def raw_form(filename: str, content: bytes, boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body with the filename as a client may send it, unescaped."""
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def test_filename_cannot_escape_the_upload_dir(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    for raw_name, expected in (("../../etc/x", "x"), ("..\\..\\.bashrc", "bashrc")):
        body, content_type = raw_form(raw_name, b"x")
        status, payload = await post_form(
            stack, webhook["id"], body, headers={"Content-Type": content_type}
        )
        assert status == 200, payload
        data = payload["data"]
        assert data["filename"] == expected  # type: ignore[index]
        stored = stack.upload_dir / data["upload_id"] / expected  # type: ignore[index]
        assert stored.read_bytes() == b"x"
    for stored in files_under(stack.upload_dir):
        assert stored.resolve().is_relative_to(stack.upload_dir.resolve())


async def test_the_last_boundary_wins(stack: Stack) -> None:
    """The original design's curl sends its own boundary after the hand-written one."""
    webhook = await stack.register("http://127.0.0.1:9/unused")
    boundary = "------------------------d74496d66958873e"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
        "hello\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    content_type = f"multipart/form-data; boundary=---011000010111000001101001; boundary={boundary}"
    status, payload = await post_form(
        stack, webhook["id"], body, headers={"Content-Type": content_type}
    )
    assert status == 200, payload
    assert payload["data"]["size"] == 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("webhook_id", "build", "status", "words"),
    [
        ("not-a-uuid", "form", 400, "webhook_id"),
        (str(uuid.uuid4()), "form", 404, "does not exist"),
        (None, "no-file-field", 400, "'file'"),
        (None, "json", 400, "multipart/form-data"),
        (None, "no-boundary", 400, "boundary"),
        (None, "garbage", 400, "malformed multipart"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    stack: Stack, webhook_id: str | None, build: str, status: int, words: str
) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    target = webhook_id or webhook["id"]
    before = await settled_counts(stack)
    kwargs: dict[str, object] = {}
    form: aiohttp.FormData | bytes
    if build == "form":
        form = aiohttp.FormData()
        form.add_field("file", b"data", filename="a.txt")
    elif build == "no-file-field":
        form = aiohttp.FormData()
        form.add_field("other", b"data", filename="a.txt")
        form.add_field("name", "value")
    elif build == "json":
        form = b'{"file": "x"}'
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif build == "no-boundary":
        form = b"whatever"
        kwargs["headers"] = {"Content-Type": "multipart/form-data"}
    else:
        form = b"this is not multipart at all"
        kwargs["headers"] = {"Content-Type": "multipart/form-data; boundary=xyz"}
    got, payload = await post_form(stack, target, form, **kwargs)
    assert got == status, payload
    assert payload["error"] is True
    assert words in str(payload["message"])
    assert await table_counts(stack) == before
    assert files_under(stack.upload_dir) == []


@pytest.mark.parametrize("idempotency_key", [None, "key-1"])
async def test_a_webhook_deleted_after_an_upload_takes_no_more(
    stack: Stack, idempotency_key: str | None
) -> None:
    # The first upload lets the service skip its lookup for a while; the insert must
    # still see the delete.
    webhook = await stack.register("http://127.0.0.1:9/unused")
    first = await stack.upload(webhook["id"])
    async with stack.http.delete(f"{stack.gateway_url}/webhook/{webhook['id']}") as resp:
        assert resp.status == 200, await resp.text()
    before = await settled_counts(stack)
    files_before = files_under(stack.upload_dir)
    form = aiohttp.FormData()
    form.add_field("file", b"late", filename="late.txt")
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    status, payload = await post_form(stack, webhook["id"], form, headers=headers)
    assert status == 404, payload
    assert payload["message"] == f"webhook {webhook['id']} does not exist"
    assert await table_counts(stack) == before
    assert files_under(stack.upload_dir) == files_before
    assert (stack.upload_dir / first["upload_id"] / "hello.txt").exists()


@pytest.mark.parametrize("stack_options", [SMALL_LIMIT])
async def test_over_the_limit_is_413_and_removed(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    before = await settled_counts(stack)
    at_limit = await stack.upload(webhook["id"], b"a" * 1000)
    assert at_limit["size"] == 1000
    form = aiohttp.FormData()
    form.add_field("file", b"a" * 1001, filename="big.bin")
    status, payload = await post_form(stack, webhook["id"], form)
    assert status == 413
    assert payload["error"] is True and "1000" in str(payload["message"])
    after = await table_counts(stack)
    assert after[0] == before[0] + 1  # only the upload at the limit
    assert [p.name for p in files_under(stack.upload_dir)] == ["hello.txt"]


@pytest.mark.parametrize("stack_options", [SMALL_LIMIT])
async def test_far_over_the_limit_is_413_from_the_gateway(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b"a" * (3 * 1024 * 1024)), filename="huge.bin")
    status, payload = await post_form(stack, webhook["id"], form)
    assert status == 413
    assert payload == {"message": "request body is too large", "data": {}, "error": True}
    assert files_under(stack.upload_dir) == []


async def test_client_disconnect_leaves_no_file_and_no_record(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    before = await settled_counts(stack)
    host, port = stack.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    boundary = "cut"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="partial.bin"\r\n\r\n'
    ).encode()
    declared = len(head) + 10 * 1024 * 1024
    writer.write(
        (
            f"POST /upload_file/webhook_id/{webhook['id']} HTTP/1.1\r\n"
            f"Host: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + head
        + b"z" * 512 * 1024
    )
    await writer.drain()
    # Wait until the service has started writing the file, then vanish.
    for _ in range(100):
        if files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.02)
    assert files_under(stack.upload_dir), "the upload never started"
    writer.close()
    for _ in range(200):
        if not files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.05)
    assert files_under(stack.upload_dir) == []
    assert list(stack.upload_dir.iterdir()) == []
    assert await table_counts(stack) == before
    del reader


async def test_uploads_recorded_together_are_each_recorded_right(stack: Stack) -> None:
    # One statement records several uploads: each must get its own outcome.
    live = await stack.register("http://127.0.0.1:9/live")
    disabled = await stack.register("http://127.0.0.1:9/disabled")
    gone = await stack.register("http://127.0.0.1:9/gone")
    await stack.pool.execute(
        "UPDATE webhook_registrations SET disabled = true WHERE id = $1",
        uuid.UUID(disabled["id"]),
    )
    await stack.pool.execute(
        "UPDATE webhook_registrations SET deleted_at = now() WHERE id = $1",
        uuid.UUID(gone["id"]),
    )
    now = datetime.now(UTC)

    def new_upload(webhook: dict[str, str], user_id: int | None = None) -> upload_db.NewUpload:
        upload_id = uuid.uuid4()
        return upload_db.NewUpload(
            upload_id=upload_id,
            webhook_id=uuid.UUID(webhook["id"]),
            user_id=user_id,
            filename="a.txt",
            stored_path=f"/nowhere/{upload_id}/a.txt",
            size=1,
            sha256="00",
            content_type="text/plain",
            request_id=None,
            created_at=now,
            delivery_id=uuid.uuid4(),
            event_data={"upload_id": str(upload_id)},
        )

    batch = [
        new_upload(live),
        new_upload(disabled),
        new_upload(gone),
        new_upload(live, user_id=999),  # another user's webhook: as good as missing
        new_upload(live),
    ]
    results = await upload_db.record_uploads(stack.pool, batch)
    assert [r is None for r in results] == [False, False, True, True, False]
    assert results[0] is not None and results[0].outbox_id is not None
    assert results[1] is not None and results[1].outbox_id is None
    assert results[4] is not None and results[4].outbox_id == results[0].outbox_id
    # One outbox row announces the batch's deliveries to be sent, and nothing else: read
    # before the outbox relay could publish (and delete) it, 3 s from now.
    (row,) = await stack.pool.fetch(
        "SELECT id, routing_key, payload FROM outbox WHERE id = $1", results[0].outbox_id
    )
    announced = [batch[0], batch[4]]
    assert row["routing_key"] == "upload.completed"
    assert row["payload"]["type"] == "upload.completed"
    by_id = sorted(row["payload"]["deliveries"], key=lambda item: item["delivery_id"])
    assert by_id == sorted(
        (upload.event.item() for upload in announced), key=lambda item: item["delivery_id"]
    )
    assert results[0].announcement is not None
    assert set(results[0].announcement.events) == {upload.event for upload in announced}
    statuses = {
        row["id"]: row["status"]
        for row in await stack.pool.fetch(
            "SELECT id, status FROM deliveries WHERE id = ANY($1)",
            [u.delivery_id for u in batch],
        )
    }
    assert statuses == {
        batch[0].delivery_id: "pending",
        batch[1].delivery_id: "not_attempted",
        batch[4].delivery_id: "pending",
    }
    recorded = await stack.pool.fetchval(
        "SELECT count(*) FROM uploads WHERE id = ANY($1)", [u.upload_id for u in batch]
    )
    assert recorded == 3


@pytest.mark.parametrize("stack_options", [StackOptions(with_dispatcher=False)])
async def test_concurrent_uploads_all_land(stack: Stack) -> None:
    webhook = await stack.register("http://127.0.0.1:9/unused")
    contents = [f"file {n}".encode() for n in range(40)]
    uploaded = await asyncio.gather(
        *(stack.upload(webhook["id"], content, f"f{n}.txt") for n, content in enumerate(contents))
    )
    assert len({u["upload_id"] for u in uploaded}) == 40
    for content, data in zip(contents, uploaded, strict=True):
        assert data["sha256"] == hashlib.sha256(content).hexdigest()
        delivery = await stack.delivery_for_upload(data["upload_id"])
        assert delivery["status"] == "pending"
        assert delivery["event_data"]["sha256"] == data["sha256"]
    count = "SELECT count(*) FROM uploads WHERE webhook_id = $1"
    assert await stack.pool.fetchval(count, uuid.UUID(webhook["id"])) == 40


# Every control character, and some that are not (C1, non-ASCII, quote, backslash, percent).
PART_NAME_CHARACTERS = [chr(code) for code in (*range(0x20), 0x7F)] + [
    "\x85", "\x90", "é", "\U0002c0f9", '"', "\\", "%", " ",
]  # fmt: skip


async def test_an_extra_part_is_refused_exactly_when_the_document_says(stack: Stack) -> None:
    """The form's propertyNames pattern is what the service refuses: an extra part is ignored
    unless its name, encoded as browsers, curl and requests do (WHATWG: CR, LF and `"`
    percent-encoded), puts a control character other than HTAB into its headers."""
    webhook = await stack.register("http://127.0.0.1:9/unused")
    refused, accepted = [], []
    for character in PART_NAME_CHARACTERS:
        name = f"note{character}x"
        body, content_type = encode_multipart_formdata(
            [(name, "{}"), ("file", ("a.txt", b"hello", "text/plain"))]
        )
        status, payload = await post_form(
            stack, webhook["id"], body, headers={"Content-Type": content_type}
        )
        if re.fullmatch(PART_NAME_PATTERN, name):
            assert status == 200, (name, payload)
            accepted.append(character)
        else:
            assert status == 400, (name, payload)
            assert "control character" in str(payload["message"]), payload
            refused.append(character)
    assert {"\t", "\r", "\n", '"', "é"} <= set(accepted)
    assert {"\x00", "\x11", "\x1f", "\x7f"} <= set(refused)
