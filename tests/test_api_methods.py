"""Every 405 a service answers names the methods it allows in `Allow` (RFC 9110)."""

from __future__ import annotations

import pytest

from harness.stack import Stack

WEBHOOK = "/webhook/5b0ad3a3-6a39-4c1e-9d49-3ad1c4bd6e6a"
EVENT_TYPE_ID = "21f8e1f7-4142-42f9-ac30-74961702b2eb"
CASES = [
    ("registration", "PUT", "/webhook/register", {"POST"}),
    ("registration", "PUT", "/event_type", {"GET", "HEAD", "POST"}),
    ("registration", "DELETE", f"/event_type/{EVENT_TYPE_ID}", {"GET", "HEAD", "PATCH"}),
    ("registration", "POST", f"/event/{EVENT_TYPE_ID}", {"GET", "HEAD"}),
    ("upload", "GET", "/event", {"POST"}),
    ("registration", "PUT", WEBHOOK, {"GET", "HEAD", "PATCH", "DELETE"}),
    ("registration", "GET", f"{WEBHOOK}/recover", {"POST"}),
    ("registration", "DELETE", "/openapi.json", {"GET", "HEAD"}),
    ("upload", "GET", "/upload_file/webhook_id/5b0ad3a3-6a39-4c1e-9d49-3ad1c4bd6e6a", {"POST"}),
]


@pytest.mark.parametrize(("service", "method", "path", "allowed"), CASES)
async def test_a_service_405_names_the_allowed_methods(
    stack: Stack, service: str, method: str, path: str, allowed: set[str]
) -> None:
    base = stack.registration_url if service == "registration" else stack.upload_url
    async with stack.http.request(method, f"{base}{path}") as resp:
        assert resp.status == 405
        assert resp.content_type == "application/json"
        allow = {value.strip() for value in resp.headers["Allow"].split(",")}
        envelope = await resp.json()
    assert allow == allowed
    assert envelope["error"] is True and method in envelope["message"]
