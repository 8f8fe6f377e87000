"""The registration service's response shapes (the `data` of each envelope), built from rows."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from services.common.api.shapes import ApiTime, Shape
from services.common.signing_keys import SignatureScheme

from .validation import DeliveryStatus

# The HMAC secret (whsec_), or the ed25519 public key (whpk_) of signature_scheme ed25519.
SECRET_PATTERN = "^(whsec|whpk)_[A-Za-z0-9+/]+=*$"


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
    signature_scheme: SignatureScheme = Field(
        description="`hmac`: `webhook-signature: v1,…`; `ed25519`: `v1a,…` (SECURITY.md)."
    )
    created_at: ApiTime
    updated_at: ApiTime


class RegisteredWebhook(_WebhookFields):
    """The answer to a registration: the only time the secret is shown with the webhook."""

    secret: str = Field(
        pattern=SECRET_PATTERN,
        description="The signing secret (Standard Webhooks), or with ed25519 the public key "
        "to verify with; shown only here and on rotation.",
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


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class UpdatedWebhook(Webhook):
    """The answer to a PATCH: the webhook as GET shows it, plus the new key when the PATCH
    changed signature_scheme (which rotates the key into the new scheme)."""

    # The two key fields are there only after a change of scheme.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    secret: str = Field(
        None,  # type: ignore[assignment]
        pattern=SECRET_PATTERN,
        json_schema_extra=_no_default,
        description="Only when this PATCH changed signature_scheme: the new key, as at "
        "registration (whsec_ secret, or whpk_ public key).",
    )
    previous_secret_expires_at: ApiTime = Field(
        None,  # type: ignore[assignment]
        json_schema_extra=_no_default,
        description="Only when signature_scheme changed: until then the old key signs too.",
    )


class SecretRotation(Shape):
    id: uuid.UUID
    signature_scheme: SignatureScheme
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
