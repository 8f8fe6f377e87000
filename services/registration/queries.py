"""The registration service's query-string models: its lists' filters and pages.

As for bodies (validation.py), each model is the one declaration of a query: the service
validates with it and the OpenAPI document shows its parameters."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from services.common.api.shapes import MAX_USER_ID

from .pagination import (
    DEFAULT_LIMIT,
    DELIVERY_CURSOR,
    EVENT_CURSOR,
    EVENT_DEFAULT_LIMIT,
    EVENT_MAX_LIMIT,
    MAX_LIMIT,
    WEBHOOK_CURSOR,
    cursor_pattern,
)
from .validation import ClientTime

DeliveryStatus = Literal["pending", "succeeded", "failed", "not_attempted", "cancelled"]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Items per page.")]
_CURSOR_HELP = "Opaque: the `next_cursor` of the previous page."
_TIME_HELP = "UTC, `YYYY-MM-DD HH:MM:SS` (or any ISO 8601 date-time)"
ListedUser = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_USER_ID,
        description="With AUTH_MODE=api_key it may be left out (the key's user) and must "
        "otherwise be the key's user (403).",
    ),
]


class WebhookListQuery(BaseModel):
    user_id: ListedUser
    event_type_id: uuid.UUID | None = Field(
        None, description="Only the webhooks subscribed to this event type."
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = Field(
        None, pattern=cursor_pattern(WEBHOOK_CURSOR), description=_CURSOR_HELP
    )


class DeliveryListQuery(BaseModel):
    status: DeliveryStatus | None = Field(None, description="Only deliveries in this state.")
    limit: Limit = DEFAULT_LIMIT
    cursor: str | None = Field(
        None, pattern=cursor_pattern(DELIVERY_CURSOR), description=_CURSOR_HELP
    )


class EventListQuery(BaseModel):
    """GET /event: the user's events, newest first."""

    user_id: ListedUser
    event_type: str | None = Field(
        None, min_length=1, max_length=100, description="Only events of the type of this name."
    )
    since: ClientTime | None = Field(
        None,
        description=f"Only events created at or after this time: {_TIME_HELP}.",
        examples=["2026-11-28 09:00:00"],
    )
    until: ClientTime | None = Field(
        None,
        description=f"Only events created before this time: {_TIME_HELP}.",
        examples=["2026-11-28 10:00:00"],
    )
    limit: Annotated[int, Field(ge=1, le=EVENT_MAX_LIMIT, description="Items per page.")] = (
        EVENT_DEFAULT_LIMIT
    )
    cursor: str | None = Field(None, pattern=cursor_pattern(EVENT_CURSOR), description=_CURSOR_HELP)
