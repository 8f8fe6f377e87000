"""How webhooks, deliveries and attempts look in responses (timestamps in the API format)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.timefmt import api_time


def _webhook_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "user_id": row["user_id"],
        "url": row["url"],
        "event_type_id": str(row["event_type_id"]),
        "custom_headers": row["custom_headers"],
        "custom_payload": row["custom_payload"],
        "created_at": api_time(row["created_at"]),
        "updated_at": api_time(row["updated_at"]),
    }


def registered_webhook_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to a registration: the only time the secret is shown with the webhook."""
    return {**_webhook_fields(row), "secret": row["secret"]}


def webhook_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook as management shows it: never its secret."""
    return {
        **_webhook_fields(row),
        "disabled": row["disabled"],
        "disabled_reason": row["disabled_reason"],
    }


def delivery_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery; its id is the `webhook-id` header the endpoint receives."""
    return {
        "id": str(row["id"]),
        "webhook_id": str(row["webhook_id"]),
        "upload_id": None if row["upload_id"] is None else str(row["upload_id"]),
        "status": row["status"],
        "attempt_count": row["attempt_count"],
        "next_retry_at": api_time(row["next_retry_at"]),
        "created_at": api_time(row["created_at"]),
        "updated_at": api_time(row["updated_at"]),
    }


def attempt_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "attempt": row["attempt"],
        "status_code": row["status_code"],
        "error": row["error"],
        "duration_ms": row["duration_ms"],
        "response_body": row["response_body"],
        "created_at": api_time(row["created_at"]),
    }
