"""The registration service's response shapes (the `data` of each envelope), built from rows."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from services.common.api.shapes import ApiTime, Shape
from services.common.signing_keys import SignatureScheme

from .endpoint_auth_shapes import TLS_CA_HELP, AuthShown, TlsCertificateShown
from .queries import DeliveryStatus

# The HMAC secret (whsec_), or the ed25519 public key (whpk_) of signature_scheme ed25519.
SECRET_PATTERN = "^(whsec|whpk)_[A-Za-z0-9+/]+=*$"
Secret = Annotated[str, Field(pattern=SECRET_PATTERN)]


class EventType(Shape):
    # `schema` is a BaseModel attribute, so the field has another name in Python.
    model_config = ConfigDict(serialize_by_alias=True)

    id: uuid.UUID
    name: str = Field(
        description="Its events' `type` on the wire (`upload file`'s is `upload.completed`)."
    )
    description: str
    payload_schema: dict[str, Any] | None = Field(
        alias="schema",
        description="The JSON Schema (draft 2020-12) every payload must satisfy; null: any.",
    )
    archived: bool = Field(description="An archived type takes no new events or webhooks.")
    created_at: ApiTime
    updated_at: ApiTime


class _WebhookFields(Shape):
    id: uuid.UUID
    user_id: int
    url: str
    event_type_id: uuid.UUID = Field(description="The first of `event_type_ids`.")
    event_type_ids: list[uuid.UUID] = Field(
        description="The event types it subscribes to, in the order given."
    )
    custom_headers: dict[str, str]
    custom_payload: dict[str, Any]
    filter: dict[str, Any] | None = Field(
        description="Matched against each event's `data`; null matches every event."
    )
    retry_schedule: list[int] | None = Field(
        description="Seconds before each retry; null is the service's RETRY_SCHEDULE."
    )
    timeout_seconds: int | None = Field(
        description="Seconds an attempt may take; null is DELIVERY_TIMEOUT_SECONDS."
    )
    signature_scheme: SignatureScheme = Field(
        description="`hmac`: `webhook-signature: v1,…`; `ed25519`: `v1a,…` (SECURITY.md)."
    )
    max_concurrency: int | None = Field(
        description="Deliveries in flight to it at once; null is DISPATCH_PER_ENDPOINT_CONCURRENCY."
    )
    rate_limit_per_second: int | None = Field(
        description="Requests a second that may start to it, across all replicas; null: no limit."
    )
    auth: AuthShown | None = Field(description="Endpoint authentication; never its secret.")
    tls_client_certificate: TlsCertificateShown | None = Field(
        description="The client certificate presented to the endpoint; never its key."
    )
    tls_ca: str | None = Field(description=TLS_CA_HELP)
    created_at: ApiTime
    updated_at: ApiTime


class RegisteredWebhook(_WebhookFields):
    """The answer to a registration: the only time the secret is shown with the webhook."""

    secret: Secret = Field(
        description="The signing secret (Standard Webhooks), or with ed25519 the public key "
        "to verify with; shown only here and on rotation."
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

    secret: Secret = Field(
        None,  # type: ignore[assignment]
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
    secret: Secret
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
    upload_id: uuid.UUID | None = Field(description="The upload's id; null for other events.")
    event_id: uuid.UUID | None = Field(
        description="The event's id (GET /event/{event_id}, which answers 404 once retention "
        "removed the event); null for a delivery recorded before events existed."
    )
    status: DeliveryStatus
    attempt_count: Annotated[int, Field(ge=0)]
    next_retry_at: ApiTime | None
    created_at: ApiTime
    updated_at: ApiTime
    ordering_key: str | None = Field(
        description="The event's ordering key (`ordering_key`, `Ordering-Key`); null if none."
    )
    waiting_for: uuid.UUID | None = Field(
        description="While it waits behind an earlier delivery of the same ordering key to "
        "this webhook: that delivery's id. Null otherwise."
    )


class Attempt(Shape):
    attempt: Annotated[int, Field(ge=1)]
    status_code: int | None
    error: str | None
    duration_ms: Annotated[int, Field(ge=0)]
    response_body: str | None = Field(description="The start of the endpoint's answer (truncated).")
    created_at: ApiTime


class DeliveryWithAttempts(Delivery):
    attempts: list[Attempt] = Field(description="In the order they were made.")


TEST_HELP = "Sent by POST /webhook/{webhook_id}/test, to that webhook only."


class OutcomeCounts(Shape):
    """Deliveries by status: `pending` includes those waiting for a retry."""

    pending: Annotated[int, Field(ge=0)] = 0
    succeeded: Annotated[int, Field(ge=0)] = 0
    failed: Annotated[int, Field(ge=0)] = 0
    not_attempted: Annotated[int, Field(ge=0)] = 0
    cancelled: Annotated[int, Field(ge=0)] = 0


class ListedEvent(Shape):
    """An event in the user's events log (GET /event)."""

    id: uuid.UUID
    event_type: str = Field(description="The type's name on the wire.")
    user_id: int
    created_at: ApiTime
    test: bool = Field(description=TEST_HELP)
    deliveries: OutcomeCounts = Field(
        description="Its deliveries by status now (those to deleted webhooks too)."
    )


class EventDelivery(Shape):
    id: uuid.UUID = Field(description="The delivery's id (GET /delivery/{delivery_id}).")
    webhook_id: uuid.UUID
    status: DeliveryStatus


class Event(Shape):
    """An event as it was accepted, with one delivery per webhook it fanned out to."""

    id: uuid.UUID
    event_type: str = Field(description="The type's name on the wire.")
    user_id: int
    payload: dict[str, Any]
    created_at: ApiTime
    test: bool = Field(description=TEST_HELP)
    deliveries: list[EventDelivery] = Field(
        description="Oldest first; empty until the fan-out made them (moments after the 202) "
        "or when no webhook matched. Deleted webhooks' are left out."
    )
