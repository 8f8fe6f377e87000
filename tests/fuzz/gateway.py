"""Talking to the gateway with an HTTP client, and checking what it answers and leaves behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from harness.stack import Stack

# aiohttp warns (and carries on) about a malformed Content-Disposition; the suite turns every
# warning into an error, which would make the in-process service fail where production does not.
TOLERATED_WARNINGS = [
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionHeader"),
    pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionParam"),
]

REQUEST_TIMEOUT_SECONDS = 10.0
ENVELOPE_KEYS = {"message", "data", "error"}


@dataclass(frozen=True)
class Answer:
    method: str
    target: str
    status: int
    content_type: str
    body: bytes

    def __str__(self) -> str:
        return f"{self.method} {self.target} -> {self.status} {self.body[:300]!r}"


async def send(
    stack: Stack,
    method: str,
    target: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    skip: tuple[str, ...] = (),
) -> Answer:
    """One request through the gateway; `target` is sent exactly as given (already encoded)."""
    url = URL(stack.gateway_url + target, encoded=True)
    try:
        async with stack.http.request(
            method,
            url,
            data=data,
            headers=headers,
            skip_auto_headers=skip,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        ) as resp:
            body = await resp.read()
            return Answer(method, target, resp.status, resp.content_type, body)
    except TimeoutError:
        raise AssertionError(
            f"{method} {target}: no answer within {REQUEST_TIMEOUT_SECONDS} s"
        ) from None


def check_envelope(answer: Answer, protocol_5xx: frozenset[int] = frozenset()) -> dict[str, Any]:
    """No 5xx, and the body is our envelope with `error` matching the status.

    `protocol_5xx` names the statuses HTTP itself prescribes for a request (501 for an unknown
    transfer coding, 505 for an unsupported version); those still need the envelope.
    """
    assert answer.status < 500 or answer.status in protocol_5xx, f"server error: {answer}"
    assert answer.content_type == "application/json", f"not JSON: {answer}"
    try:
        body = json.loads(answer.body)
    except ValueError:
        raise AssertionError(f"body is not JSON: {answer}") from None
    assert isinstance(body, dict), f"not an envelope: {answer}"
    assert ENVELOPE_KEYS <= set(body) <= ENVELOPE_KEYS | {"next_cursor"}, (
        f"not an envelope: {answer}"
    )
    assert isinstance(body["message"], str) and body["message"], f"no message: {answer}"
    assert isinstance(body["data"], dict | list), f"data is not an object or array: {answer}"
    assert body["error"] is (answer.status >= 400), f"error flag disagrees with status: {answer}"
    return body


async def registration_count(stack: Stack) -> int:
    count: int = await stack.pool.fetchval(
        "SELECT (SELECT count(*) FROM webhook_registrations)"
        " + (SELECT count(*) FROM webhook_configurations)"
    )
    return count


async def upload_count(stack: Stack) -> int:
    count: int = await stack.pool.fetchval("SELECT count(*) FROM uploads")
    return count


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


_webhooks: dict[str, str] = {}


async def target_webhook(stack: Stack) -> str:
    """One registered webhook per running stack, shared by that test's examples."""
    if stack.gateway_url not in _webhooks:
        _webhooks[stack.gateway_url] = (await stack.register("http://127.0.0.1:9/unused"))["id"]
    return _webhooks[stack.gateway_url]


async def check_registration(stack: Stack, raw: bytes, content_type: str | None) -> Answer:
    before = await registration_count(stack)
    headers = {} if content_type is None else {"Content-Type": content_type}
    skip = ("Content-Type",) if content_type is None else ()
    answer = await send(stack, "POST", "/webhook/register", data=raw, headers=headers, skip=skip)
    body = check_envelope(answer)
    after = await registration_count(stack)
    if answer.status == 200:
        assert after == before + 2, f"an accepted registration stores two rows: {answer}"
        assert uuid.UUID(body["data"]["id"])
    else:
        assert after == before, f"a refused registration wrote rows: {answer}"
    return answer


async def check_upload(
    stack: Stack, target: str, body: bytes, content_type: str | None
) -> tuple[Answer, dict[str, Any]]:
    """Post it; whatever the answer, only an accepted upload leaves a file and a row."""
    files_before = files_under(stack.upload_dir)
    rows_before = await upload_count(stack)
    headers = {} if content_type is None else {"Content-Type": content_type}
    skip = ("Content-Type",) if content_type is None else ()
    answer = await send(stack, "POST", target, data=body, headers=headers, skip=skip)
    envelope = check_envelope(answer)
    new_files = files_under(stack.upload_dir) - files_before
    rows_after = await upload_count(stack)
    if answer.status == 200:
        data = envelope["data"]
        stored = stack.upload_dir / data["upload_id"] / data["filename"]
        assert new_files == {stored}, f"{answer}: new files {new_files}"
        assert stored.resolve().is_relative_to(stack.upload_dir.resolve())
        assert stored.stat().st_size == data["size"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == data["sha256"]
        assert rows_after == rows_before + 1
    else:
        assert new_files == set(), f"refused upload left files: {answer}: {new_files}"
        assert rows_after == rows_before, f"refused upload left a row: {answer}"
    return answer, envelope


async def assert_nothing_left(stack: Stack, rows: int, settle: float = 3.0) -> None:
    for _ in range(int(settle / 0.05)):
        if not files_under(stack.upload_dir):
            break
        await asyncio.sleep(0.05)
    assert files_under(stack.upload_dir) == set()
    assert list(stack.upload_dir.iterdir()) == []
    assert await upload_count(stack) == rows
