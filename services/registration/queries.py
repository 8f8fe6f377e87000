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
    MAX_LIMIT,
    WEBHOOK_CURSOR,
    cursor_pattern,
)

DeliveryStatus = Literal["pending", "succeeded", "failed", "not_attempted", "cancelled"]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Items per page.")]
_CURSOR_HELP = "Opaque: the `next_cursor` of the previous page."
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
