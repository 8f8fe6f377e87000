"""Every route of the API as a request builder: the one place that knows paths, fields and headers.

Both clients send what these build, so the async and the sync client cannot drift apart.
Each builder is registered with its method and path and the shape of its answer's `data`;
tests/test_publisher_sdk.py compares that registry with the OpenAPI document.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID

from .models import (
    AcceptedEvent,
    ApiKey,
    AuthMode,
    Delivery,
    DeliveryBody,
    DeliveryStats,
    DeliveryStatus,
    DeliveryWithAttempts,
    Event,
    EventType,
    JsonObject,
    ListedEvent,
    NewApiKey,
    PortalSession,
    Recovering,
    RegisteredWebhook,
    SampleEvent,
    SecretRotation,
    SentTestEvent,
    SignatureScheme,
    UpdatedWebhook,
    Upload,
    Webhook,
)

Data = TypeVar("Data")
Builder = TypeVar("Builder", bound=Callable[..., "Call[Any]"])
Id = str | UUID


class Unset(enum.Enum):
    """Not sent at all, as opposed to None, which is sent as JSON null (it clears a field)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class Call(Generic[Data]):
    """One HTTP request; `Data` is the type of the answer's `data`."""

    method: str
    path: str
    params: dict[str, str | int] = field(default_factory=dict)
    json: JsonObject | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes | IO[bytes], str]] | None = None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    builder: Callable[..., Call[Any]]
    # The TypedDict of the answer's `data` (of each item, for a list).
    data: type
    is_list: bool


ROUTES: dict[tuple[str, str], Route] = {}


def route(
    method: str, path: str, data: type, *, is_list: bool = False
) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        ROUTES[(method, path)] = Route(method, path, builder, data, is_list)
        return builder

    return register


def segment(value: Id) -> str:
    return quote(str(value), safe="")


def given(**fields: Any) -> JsonObject:
    """The fields that were given: UNSET ones are left out, None ones are sent as null."""
    return {name: value for name, value in fields.items() if value is not UNSET}


def query(**values: str | int | None) -> dict[str, str | int]:
    return {name: value for name, value in values.items() if value is not None}


def ingest_headers(key: str | None, ordering_key: str | None = None) -> dict[str, str]:
    """An upload's optional headers (an event's Idempotency-Key: its key goes in the body)."""
    headers = {} if key is None else {"Idempotency-Key": key}
    if ordering_key is not None:
        headers["Ordering-Key"] = ordering_key
    return headers


@route("GET", "/event_type", EventType, is_list=True)
def list_event_types(*, name: str | None = None) -> Call[list[EventType]]:
    """Every event type (archived ones too), or the one called `name`."""
    return Call("GET", "/event_type", params=query(name=name))


@route("POST", "/event_type", EventType)
def create_event_type(
    name: str,
    *,
    description: str | Unset = UNSET,
    schema: JsonObject | Unset | None = UNSET,
) -> Call[EventType]:
    """A new event type; `schema` is a JSON Schema (draft 2020-12) every payload must satisfy."""
    body = given(name=name, description=description, schema=schema)
    return Call("POST", "/event_type", json=body)


@route("GET", "/event_type/{event_type_id}", EventType)
def get_event_type(event_type_id: Id) -> Call[EventType]:
    return Call("GET", f"/event_type/{segment(event_type_id)}")


@route("PATCH", "/event_type/{event_type_id}", EventType)
def update_event_type(
    event_type_id: Id,
    *,
    description: str | Unset = UNSET,
    schema: JsonObject | Unset | None = UNSET,
    archived: bool | Unset = UNSET,
) -> Call[EventType]:
    """Change what is given; `schema=None` removes the schema, `archived=True` retires the type."""
    body = given(description=description, schema=schema, archived=archived)
    return Call("PATCH", f"/event_type/{segment(event_type_id)}", json=body)


@route("POST", "/event", AcceptedEvent)
def publish_event(
    event_type: str | None = None,
    *,
    payload: Mapping[str, Any],
    event_type_id: Id | None = None,
    user_id: int | None = None,
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
) -> Call[AcceptedEvent]:
    """Publish an event of the type named `event_type` (or with id `event_type_id`).

    `user_id` may be left out with an API key (the key's user). With `idempotency_key`, a
    repeat within 24 hours answers the first event again instead of publishing twice. With
    `ordering_key`, each webhook gets the events of that key one at a time, in order.
    """
    body: JsonObject = {"payload": dict(payload)}
    if event_type is not None:
        body["event_type"] = event_type
    if event_type_id is not None:
        body["event_type_id"] = str(event_type_id)
    if user_id is not None:
        body["user_id"] = user_id
    if ordering_key is not None:
        body["ordering_key"] = ordering_key
    return Call("POST", "/event", json=body, headers=ingest_headers(idempotency_key))


@route("GET", "/event", ListedEvent, is_list=True)
def list_events(
    user_id: int | None = None,
    *,
    event_type: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[list[ListedEvent]]:
    """One page of a user's events (of the type named `event_type`, created at or after
    `since` and before `until`; naive times are UTC), newest first, 20 a page by default."""
    params = query(
        user_id=user_id,
        event_type=event_type,
        since=moment(since),
        until=moment(until),
        limit=limit,
        cursor=cursor,
    )
    return Call("GET", "/event", params=params)


@route("GET", "/event/{event_id}", Event)
def get_event(event_id: Id) -> Call[Event]:
    """The event with one delivery per webhook it was fanned out to."""
    return Call("GET", f"/event/{segment(event_id)}")


@route("POST", "/webhook/register", RegisteredWebhook)
def register_webhook(
    event_type_id: Id | None,
    url: str,
    *,
    event_type_ids: Sequence[Id] | Unset = UNSET,
    user_id: int | None = None,
    custom_headers: Mapping[str, str] | Unset | None = UNSET,
    custom_payload: JsonObject | Unset | None = UNSET,
    filter: JsonObject | Unset | None = UNSET,
    retry_schedule: Sequence[int] | Unset | None = UNSET,
    timeout_seconds: int | Unset | None = UNSET,
    max_concurrency: int | Unset | None = UNSET,
    signature_scheme: SignatureScheme | Unset = UNSET,
    auth: JsonObject | Unset | None = UNSET,
    tls_client_certificate: Mapping[str, str] | Unset | None = UNSET,
    tls_ca: str | Unset | None = UNSET,
    rate_limit_per_second: int | Unset | None = UNSET,
) -> Call[RegisteredWebhook]:
    """Register `url` for events of a type; the answer is the only one with the secret.

    For several types, pass `event_type_id=None` and `event_type_ids` (1 to 100, in the
    order the webhook shows them): one endpoint, one secret, every type's events.
    `signature_scheme="ed25519"` makes the answer's `secret` the `whpk_` public key that
    verifies the deliveries (the service keeps the private key); the default is `hmac`.
    `auth` (`{"type": "basic", ...}` or `{"type": "oauth2_client_credentials", ...}`),
    `tls_client_certificate` (`{"certificate", "private_key"}`) and `tls_ca` say how the
    dispatcher authenticates to the endpoint; their secrets are never shown again.
    """
    body = given(
        event_type_id=UNSET if event_type_id is None else str(event_type_id),
        event_type_ids=ids(event_type_ids),
        url=url,
        custom_headers=plain(custom_headers),
        custom_payload=custom_payload,
        filter=filter,
        retry_schedule=plain(retry_schedule),
        timeout_seconds=timeout_seconds,
        max_concurrency=max_concurrency,
        signature_scheme=signature_scheme,
        auth=auth,
        tls_client_certificate=plain(tls_client_certificate),
        tls_ca=tls_ca,
        rate_limit_per_second=rate_limit_per_second,
    )
    if user_id is not None:
        body["user_id"] = user_id
    return Call("POST", "/webhook/register", json=body)


@route("GET", "/webhook", Webhook, is_list=True)
def list_webhooks(
    user_id: int | None = None,
    *,
    event_type_id: Id | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[list[Webhook]]:
    """One page of a user's webhooks (those subscribed to `event_type_id`), newest first."""
    type_id = None if event_type_id is None else str(event_type_id)
    params = query(user_id=user_id, event_type_id=type_id, limit=limit, cursor=cursor)
    return Call("GET", "/webhook", params=params)


@route("GET", "/webhook/{webhook_id}", Webhook)
def get_webhook(webhook_id: Id) -> Call[Webhook]:
    return Call("GET", f"/webhook/{segment(webhook_id)}")


@route("PATCH", "/webhook/{webhook_id}", UpdatedWebhook)
def update_webhook(
    webhook_id: Id,
    *,
    url: str | Unset = UNSET,
    event_type_ids: Sequence[Id] | Unset = UNSET,
    custom_headers: Mapping[str, str] | Unset | None = UNSET,
    custom_payload: JsonObject | Unset | None = UNSET,
    disabled: bool | Unset = UNSET,
    filter: JsonObject | Unset | None = UNSET,
    retry_schedule: Sequence[int] | Unset | None = UNSET,
    timeout_seconds: int | Unset | None = UNSET,
    max_concurrency: int | Unset | None = UNSET,
    signature_scheme: SignatureScheme | Unset = UNSET,
    auth: JsonObject | Unset | None = UNSET,
    tls_client_certificate: Mapping[str, str] | Unset | None = UNSET,
    tls_ca: str | Unset | None = UNSET,
    rate_limit_per_second: int | Unset | None = UNSET,
) -> Call[UpdatedWebhook]:
    """Change what is given; event types, headers and payload are replaced whole, None clears
    headers and payload.

    A different `signature_scheme` rotates the key into it: the answer then carries the new
    `secret` and `previous_secret_expires_at` (the old key signs too until then).
    """
    body = given(
        url=url,
        event_type_ids=ids(event_type_ids),
        custom_headers=plain(custom_headers),
        custom_payload=custom_payload,
        disabled=disabled,
        filter=filter,
        retry_schedule=plain(retry_schedule),
        timeout_seconds=timeout_seconds,
        max_concurrency=max_concurrency,
        signature_scheme=signature_scheme,
        auth=auth,
        tls_client_certificate=plain(tls_client_certificate),
        tls_ca=tls_ca,
        rate_limit_per_second=rate_limit_per_second,
    )
    return Call("PATCH", f"/webhook/{segment(webhook_id)}", json=body)


@route("DELETE", "/webhook/{webhook_id}", Webhook)
def delete_webhook(webhook_id: Id) -> Call[Webhook]:
    """Delete it and cancel its pending deliveries; the answer is the webhook as it was."""
    return Call("DELETE", f"/webhook/{segment(webhook_id)}")


@route("GET", "/webhook/{webhook_id}/deliveries", Delivery, is_list=True)
def list_deliveries(
    webhook_id: Id,
    *,
    status: DeliveryStatus | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[list[Delivery]]:
    """One page of a webhook's deliveries, newest first."""
    params = query(status=status, limit=limit, cursor=cursor)
    return Call("GET", f"/webhook/{segment(webhook_id)}/deliveries", params=params)


@route("GET", "/webhook/{webhook_id}/stats", DeliveryStats)
def get_webhook_stats(webhook_id: Id, *, hours: int | None = None) -> Call[DeliveryStats]:
    """The webhook's deliveries of the last `hours` (default 24, at most 168) by status."""
    return Call("GET", f"/webhook/{segment(webhook_id)}/stats", params=query(hours=hours))


@route("GET", "/webhook/{webhook_id}/sample_event", SampleEvent)
def get_sample_event(webhook_id: Id) -> Call[SampleEvent]:
    """A test event of the webhook's type for its user; nothing is published until you do."""
    return Call("GET", f"/webhook/{segment(webhook_id)}/sample_event")


@route("POST", "/webhook/{webhook_id}/test", SentTestEvent)
def send_test_event(
    webhook_id: Id, *, event_type: str | Unset = UNSET, payload: JsonObject | Unset = UNSET
) -> Call[SentTestEvent]:
    """A test event to this webhook only, whatever its filter: of one of its types (its
    first by default), with `payload` (by default a sample valid for the type's schema)."""
    body = given(event_type=event_type, payload=payload)
    return Call("POST", f"/webhook/{segment(webhook_id)}/test", json=body)


@route("POST", "/webhook/{webhook_id}/recover", Recovering)
def recover_webhook(webhook_id: Id, since: datetime | str) -> Call[Recovering]:
    """Send again every failed or not attempted delivery created since then (naive is UTC)."""
    body = {"since": moment(since)}
    return Call("POST", f"/webhook/{segment(webhook_id)}/recover", json=body)


@route("POST", "/webhook/{webhook_id}/secret/rotate", SecretRotation)
def rotate_secret(webhook_id: Id) -> Call[SecretRotation]:
    """A new signing secret; the old one keeps signing until `previous_secret_expires_at`."""
    return Call("POST", f"/webhook/{segment(webhook_id)}/secret/rotate")


@route("GET", "/delivery/{delivery_id}", DeliveryWithAttempts)
def get_delivery(delivery_id: Id) -> Call[DeliveryWithAttempts]:
    """A delivery (its id is the `webhook-id` header) with its attempts."""
    return Call("GET", f"/delivery/{segment(delivery_id)}")


@route("GET", "/delivery/{delivery_id}/body", DeliveryBody)
def get_delivery_body(delivery_id: Id) -> Call[DeliveryBody]:
    """The JSON text the delivery's next attempt sends, byte for byte."""
    return Call("GET", f"/delivery/{segment(delivery_id)}/body")


@route("POST", "/delivery/{delivery_id}/redeliver", Delivery)
def redeliver(delivery_id: Id) -> Call[Delivery]:
    """A new attempt now, whatever its status, with a fresh retry schedule."""
    return Call("POST", f"/delivery/{segment(delivery_id)}/redeliver")


@route("POST", "/upload_file/webhook_id/{webhook_id}", Upload)
def upload_file(
    webhook_id: Id,
    file: bytes | IO[bytes],
    *,
    filename: str,
    content_type: str = "application/octet-stream",
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
) -> Call[Upload]:
    """Upload a file (streamed when `file` is an open binary file); its webhook is delivered
    (after the earlier uploads of `ordering_key`, with one)."""
    return Call(
        "POST",
        f"/upload_file/webhook_id/{segment(webhook_id)}",
        headers=ingest_headers(idempotency_key, ordering_key),
        files={"file": (filename, file, content_type)},
    )


@route("GET", "/auth_mode", AuthMode)
def get_auth_mode() -> Call[AuthMode]:
    """Whether the service wants an API key (`api_key`) or a `user_id` (`none`); needs no key."""
    return Call("GET", "/auth_mode")


@route("GET", "/api_key", ApiKey, is_list=True)
def list_api_keys(*, limit: int | None = None, cursor: str | None = None) -> Call[list[ApiKey]]:
    """The keys not revoked (expired ones and portal sessions too), newest first; admin keys
    only."""
    return Call("GET", "/api_key", params=query(limit=limit, cursor=cursor))


@route("POST", "/api_key", NewApiKey)
def create_api_key(
    *,
    user_id: int | None = None,
    admin: bool | Unset = UNSET,
    expires_in_seconds: int | None = None,
) -> Call[NewApiKey]:
    """A key for `user_id`, or (`admin=True`) for every user; `key` is shown only now."""
    body = given(admin=admin)
    if user_id is not None:
        body["user_id"] = user_id
    if expires_in_seconds is not None:
        body["expires_in_seconds"] = expires_in_seconds
    return Call("POST", "/api_key", json=body)


@route("DELETE", "/api_key/{api_key_id}", ApiKey)
def revoke_api_key(api_key_id: Id) -> Call[ApiKey]:
    """Every service refuses the key within a second."""
    return Call("DELETE", f"/api_key/{segment(api_key_id)}")


@route("POST", "/portal/session", PortalSession)
def create_portal_session(
    user_id: int, expires_in_seconds: int | None = None
) -> Call[PortalSession]:
    """A link (`url`) that signs a browser in to the console as the user, for
    `expires_in_seconds` (60 to 86400; default 3600); admin keys only."""
    body: JsonObject = {"user_id": user_id}
    if expires_in_seconds is not None:
        body["expires_in_seconds"] = expires_in_seconds
    return Call("POST", "/portal/session", json=body)


@route("DELETE", "/portal/session/{portal_session_id}", ApiKey)
def delete_portal_session(portal_session_id: Id) -> Call[ApiKey]:
    """Revoke a portal link: every service refuses it within a second."""
    return Call("DELETE", f"/portal/session/{segment(portal_session_id)}")


def plain(value: Mapping[str, str] | Sequence[int] | Unset | None) -> Any:
    """Mappings and sequences as JSON objects and arrays (a tuple or a frozen mapping works)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return value


def ids(values: Sequence[Id] | Unset) -> list[str] | Unset:
    return values if isinstance(values, Unset) else [str(value) for value in values]


def moment(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
