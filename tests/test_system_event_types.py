"""The system's own event types (`upload file`, `webhook.disabled`, `delivery.failed`) keep
their schema and cannot be archived through the API, in every auth mode (SPEC §8)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.stack import Stack, StackOptions
from services.common import system_events
from services.common.api_keys import hash_api_key, new_api_key

SYSTEM_TYPES = {
    system_events.UPLOAD_EVENT_TYPE_ID: "upload file",
    system_events.WEBHOOK_DISABLED_TYPE_ID: "webhook.disabled",
    system_events.DELIVERY_FAILED_TYPE_ID: "delivery.failed",
}
REFUSED_CHANGES = [
    {"archived": True},
    {"schema": {"type": "object"}},
    {"schema": None},
    {"description": "Mine now", "archived": True},
]


async def admin_headers(stack: Stack, options: StackOptions) -> dict[str, str]:
    """An admin key's header with AUTH_MODE=api_key; none is needed with AUTH_MODE=none."""
    if options.auth_mode == "none":
        return {}
    key = new_api_key()
    await stack.pool.execute(
        "INSERT INTO api_keys (key_hash, user_id, prefix, admin) VALUES ($1, NULL, $2, true)",
        hash_api_key(key), key[:10],
    )  # fmt: skip
    return {"Authorization": f"Bearer {key}"}


async def patch(
    stack: Stack, type_id: object, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with stack.http.patch(
        f"{stack.gateway_url}/event_type/{type_id}", json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "stack_options",
    [StackOptions(), StackOptions(auth_mode="api_key")],
    ids=["auth-none", "api-key-admin"],
)
async def test_system_types_cannot_be_archived_or_get_a_schema(
    stack: Stack, stack_options: StackOptions
) -> None:
    headers = await admin_headers(stack, stack_options)
    for type_id, name in SYSTEM_TYPES.items():
        before = await stack.pool.fetchrow("SELECT * FROM event_types WHERE id = $1", type_id)
        for body in REFUSED_CHANGES:
            status, answer = await patch(stack, type_id, body, headers)
            assert status == 403, (name, body, answer)
            assert answer["error"] is True
            assert answer["message"] == (
                f"event type {name!r} is the system's own: it cannot be archived and its "
                "schema cannot change (its description can)"
            )
        after = await stack.pool.fetchrow("SELECT * FROM event_types WHERE id = $1", type_id)
        assert after == before, name
        # Its description may change (and `archived: false` archives nothing).
        status, answer = await patch(
            stack, type_id, {"description": "Changed here", "archived": False}, headers
        )
        assert status == 200 and answer["data"]["description"] == "Changed here", answer
        assert answer["data"]["archived"] is False and answer["data"]["name"] == name
        status, _ = await patch(stack, type_id, {"description": before["description"]}, headers)
        assert status == 200
