"""What the API answers, as TypedDicts named after the OpenAPI document's schemas.

They are the JSON objects themselves (no conversion, no copy): timestamps stay the API's
`YYYY-MM-DD HH:MM:SS` strings in UTC and ids stay strings. tests/test_publisher_sdk.py
fails when a schema gains or loses a field that its TypedDict here does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypedDict, TypeVar

JsonObject = dict[str, Any]
DeliveryStatus = Literal["pending", "succeeded", "failed", "not_attempted", "cancelled"]
# `hmac`: a shared `whsec_` secret signs (`v1,`); `ed25519`: the service keeps the private key
# and the endpoint verifies `v1a,` signatures with the `whpk_` public key.
SignatureScheme = Literal["hmac", "ed25519"]
AuthModeName = Literal["none", "api_key"]
Item = TypeVar("Item")


class EventType(TypedDict):
    id: str
    name: str
    description: str
    schema: JsonObject | None
    archived: bool
    created_at: str
    updated_at: str


class AcceptedEvent(TypedDict):
    event_id: str
    event_type: str
    user_id: int
    created_at: str


class SentTestEvent(TypedDict):
    """A test event sent to one webhook: its event (`test: true`) and its one delivery."""

    event_id: str
    delivery_id: str


class EventDelivery(TypedDict):
    id: str
    webhook_id: str
    status: DeliveryStatus


class Event(TypedDict):
    id: str
    event_type: str
    user_id: int
    payload: JsonObject
    created_at: str
    # Sent by `send_test_event`, to one webhook only.
    test: bool
    deliveries: list[EventDelivery]


class TlsCertificateShown(TypedDict):
    """The client certificate a webhook presents: never its private key."""

    subject: str
    expires_at: str
    private_key: None
    has_private_key: bool


class _WebhookFields(TypedDict):
    """What every answer about a webhook carries (as the service's views declare it)."""

    id: str
    user_id: int
    url: str
    # The first of `event_type_ids`, the types it subscribes to (in the order given).
    event_type_id: str
    event_type_ids: list[str]
    custom_headers: dict[str, str]
    custom_payload: JsonObject
    filter: JsonObject | None
    retry_schedule: list[int] | None
    timeout_seconds: int | None
    max_concurrency: int | None
    signature_scheme: SignatureScheme
    # How the dispatcher authenticates to the endpoint: `{"type": "basic", "username",
    # "password": None, "has_password"}` or the OAuth2 fields with `client_secret` None.
    auth: JsonObject | None
    tls_client_certificate: TlsCertificateShown | None
    tls_ca: str | None
    rate_limit_per_second: int | None
    created_at: str
    updated_at: str


class Webhook(_WebhookFields):
    disabled: bool
    disabled_reason: str | None


# total=False rather than NotRequired[...]: Python 3.11 cannot see NotRequired in the string
# annotations of `from __future__ import annotations`, and would count these keys as required.
class UpdatedWebhook(Webhook, total=False):
    """The answer to a PATCH: with the new key only when the PATCH changed `signature_scheme`."""

    secret: str
    previous_secret_expires_at: str


class RegisteredWebhook(_WebhookFields):
    """The answer to a registration: the only time the secret comes with the webhook."""

    secret: str


class SecretRotation(TypedDict):
    id: str
    signature_scheme: SignatureScheme
    secret: str
    previous_secret_expires_at: str


class Delivery(TypedDict):
    """One event to one webhook; `id` is the `webhook-id` header the endpoint received."""

    id: str
    webhook_id: str
    upload_id: str | None
    event_id: str | None
    status: DeliveryStatus
    attempt_count: int
    next_retry_at: str | None
    created_at: str
    updated_at: str
    # The event's ordering key, and the delivery it waits behind while it does.
    ordering_key: str | None
    waiting_for: str | None


class Attempt(TypedDict):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None
    created_at: str


class DeliveryWithAttempts(Delivery):
    attempts: list[Attempt]


class Recovering(TypedDict):
    recovering: int


class Upload(TypedDict):
    upload_id: str
    webhook_id: str
    filename: str
    size: int
    sha256: str
    content_type: str


class DeliveryBody(TypedDict):
    """The JSON text a delivery's request carries, byte for byte."""

    id: str
    body: str


class OutcomeCounts(TypedDict):
    pending: int
    succeeded: int
    failed: int
    not_attempted: int
    cancelled: int


class ListedEvent(TypedDict):
    """An event in the user's events log, its deliveries counted by status."""

    id: str
    event_type: str
    user_id: int
    created_at: str
    test: bool
    deliveries: OutcomeCounts


class HourOfDeliveries(OutcomeCounts):
    start: str


class DeliveryStats(TypedDict):
    """A webhook's deliveries of the last `hours` by status; `success_rate` None: none tried."""

    webhook_id: str
    hours: int
    since: str
    until: str
    totals: OutcomeCounts
    attempted: int
    success_rate: float | None
    buckets: list[HourOfDeliveries]


class SampleEvent(TypedDict):
    """A body for `publish_event` with a test event of the webhook's type (not yet published)."""

    event_type_id: str
    event_type: str
    user_id: int
    payload: JsonObject


class AuthMode(TypedDict):
    auth_mode: AuthModeName


class ApiKey(TypedDict):
    """An API key as listed (admin keys only): never the key itself."""

    id: str
    user_id: int | None
    admin: bool
    portal: bool
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None


class NewApiKey(ApiKey):
    """A key just created: `key` is shown this once."""

    key: str


class PortalSession(TypedDict):
    """A portal link just created: send the user's browser to `url` (shown this once)."""

    id: str
    user_id: int
    url: str
    expires_at: str


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a list; pass `next_cursor` back as `cursor` until it is None."""

    items: list[Item]
    next_cursor: str | None
