"""The registration service's response shapes (the `data` of each envelope), built from rows."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from services.common.api.shapes import ApiTime, Shape

from .validation import DeliveryStatus

SECRET_PATTERN = "^whsec_[A-Za-z0-9+/]+=*$"


class EventType(Shape):
    id: uuid.UUID
    name: str
    description: str


class _WebhookFields(Shape):
    id: uuid.UUID
    user_id: int
    url: str
    event_type_id: uuid.UUID
    custom_headers: dict[str, str]
    custom_payload: dict[str, Any]
    created_at: ApiTime
    updated_at: ApiTime


class RegisteredWebhook(_WebhookFields):
    """The answer to a registration: the only time the secret is shown with the webhook."""

    secret: str = Field(
        pattern=SECRET_PATTERN,
        description="The signing secret (Standard Webhooks); shown only here and on rotation.",
    )


class Webhook(_WebhookFields):
    """A webhook as management shows it: never its secret."""

    disabled: bool = Field(
        description="A disabled webhook's uploads are accepted and their deliveries recorded "
        "as `not_attempted`."
    )
    disabled_reason: str | None = Field(
        description="Why: `disabled by user`, `endpoint answered 410 Gone`, or continuous "
        "failures for DISABLE_AFTER_SECONDS."
    )


class SecretRotation(Shape):
    id: uuid.UUID
    secret: str = Field(pattern=SECRET_PATTERN)
    previous_secret_expires_at: ApiTime = Field(
        description="Until then deliveries carry two signatures, the new secret's first "
        "(SECRET_ROTATION_GRACE_SECONDS after the rotation)."
    )


class Recovering(Shape):
    recovering: int = Field(
        ge=0, description="How many deliveries are being redelivered in the background."
    )


class Delivery(Shape):
    """One event to one webhook; `id` is the `webhook-id` header the endpoint received."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    upload_id: uuid.UUID | None
    status: DeliveryStatus
    attempt_count: Annotated[int, Field(ge=0)]
    next_retry_at: ApiTime | None
    created_at: ApiTime
    updated_at: ApiTime


class Attempt(Shape):
    attempt: Annotated[int, Field(ge=1)]
    status_code: int | None
    error: str | None
    duration_ms: Annotated[int, Field(ge=0)]
    response_body: str | None = Field(description="The start of the endpoint's answer (truncated).")
    created_at: ApiTime


class DeliveryWithAttempts(Delivery):
    attempts: list[Attempt] = Field(description="In the order they were made.")
