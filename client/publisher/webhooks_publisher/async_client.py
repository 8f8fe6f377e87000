"""The async client: each method sends one request built by operations.py (docstrings there).

sync_client.py, the blocking `WebhooksClient`, is generated from this file by unasync
(client/publisher/unasync_clients.py, run by `make` and by the package's build): edit this
one, and write nothing here that would not also be right without `async` and `await`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import IO, Any, Self, TypeVar, cast

import httpx

from . import operations as op
from .envelope import DEFAULT_TIMEOUT, default_headers, page_of, read_envelope
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
    Page,
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
from .operations import UNSET, Call, Id, Unset

Data = TypeVar("Data")
Item = TypeVar("Item")


class AsyncWebhooksClient:
    """`async with AsyncWebhooksClient("http://gateway:8081", api_key=...) as client: ...`"""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=default_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[Data]) -> Data:
        """Send one built request and return its answer's `data`."""
        return cast(Data, (await self._envelope(call))["data"])

    async def send_page(self, call: Call[list[Item]]) -> Page[Item]:
        return page_of(await self._envelope(call))

    async def _envelope(self, call: Call[Any]) -> JsonObject:
        response = await self._http.request(
            call.method,
            call.path,
            params=call.params or None,
            json=call.json,
            headers=call.headers or None,
            files=call.files,
        )
        return read_envelope(response)

    async def all_pages(
        self, first_page: Callable[[str | None], Call[list[Item]]]
    ) -> AsyncIterator[Item]:
        """Every item of a list, page after page (`first_page(cursor)` builds each request)."""
        cursor: str | None = None
        while True:
            page = await self.send_page(first_page(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_webhooks(
        self,
        user_id: int | None = None,
        *,
        event_type_id: Id | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Webhook]:
        """Every webhook of the user (subscribed to `event_type_id`), newest first, fetched
        `limit` at a time."""
        return self.all_pages(
            lambda cursor: op.list_webhooks(
                user_id, event_type_id=event_type_id, limit=limit, cursor=cursor
            )
        )

    def iter_deliveries(
        self, webhook_id: Id, *, status: DeliveryStatus | None = None, limit: int | None = None
    ) -> AsyncIterator[Delivery]:
        """Every delivery of the webhook (of one status if given), newest first."""
        return self.all_pages(
            lambda cursor: op.list_deliveries(webhook_id, status=status, limit=limit, cursor=cursor)
        )

    def iter_events(
        self,
        user_id: int | None = None,
        *,
        event_type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[ListedEvent]:
        """Every event of the user (of one type, in a time window, if given), newest first."""
        return self.all_pages(
            lambda cursor: op.list_events(
                user_id,
                event_type=event_type,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )
        )

    async def list_event_types(self, *, name: str | None = None) -> Page[EventType]:
        return await self.send_page(op.list_event_types(name=name))

    async def create_event_type(
        self,
        name: str,
        *,
        description: str | Unset = UNSET,
        schema: JsonObject | Unset | None = UNSET,
    ) -> EventType:
        return await self.send(op.create_event_type(name, description=description, schema=schema))

    async def get_event_type(self, event_type_id: Id) -> EventType:
        return await self.send(op.get_event_type(event_type_id))

    async def update_event_type(
        self,
        event_type_id: Id,
        *,
        description: str | Unset = UNSET,
        schema: JsonObject | Unset | None = UNSET,
        archived: bool | Unset = UNSET,
    ) -> EventType:
        return await self.send(
            op.update_event_type(
                event_type_id, description=description, schema=schema, archived=archived
            )
        )

    async def publish_event(
        self,
        event_type: str | None = None,
        *,
        payload: Mapping[str, Any],
        event_type_id: Id | None = None,
        user_id: int | None = None,
        idempotency_key: str | None = None,
        ordering_key: str | None = None,
    ) -> AcceptedEvent:
        return await self.send(
            op.publish_event(
                event_type,
                payload=payload,
                event_type_id=event_type_id,
                user_id=user_id,
                idempotency_key=idempotency_key,
                ordering_key=ordering_key,
            )
        )

    async def list_events(
        self,
        user_id: int | None = None,
        *,
        event_type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ListedEvent]:
        return await self.send_page(
            op.list_events(
                user_id,
                event_type=event_type,
                since=since,
                until=until,
                limit=limit,
                cursor=cursor,
            )
        )

    async def get_event(self, event_id: Id) -> Event:
        return await self.send(op.get_event(event_id))

    async def register_webhook(
        self,
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
    ) -> RegisteredWebhook:
        return await self.send(
            op.register_webhook(
                event_type_id,
                url,
                event_type_ids=event_type_ids,
                user_id=user_id,
                custom_headers=custom_headers,
                custom_payload=custom_payload,
                filter=filter,
                retry_schedule=retry_schedule,
                timeout_seconds=timeout_seconds,
                max_concurrency=max_concurrency,
                signature_scheme=signature_scheme,
                auth=auth,
                tls_client_certificate=tls_client_certificate,
                tls_ca=tls_ca,
                rate_limit_per_second=rate_limit_per_second,
            )
        )

    async def list_webhooks(
        self,
        user_id: int | None = None,
        *,
        event_type_id: Id | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Webhook]:
        return await self.send_page(
            op.list_webhooks(user_id, event_type_id=event_type_id, limit=limit, cursor=cursor)
        )

    async def get_webhook(self, webhook_id: Id) -> Webhook:
        return await self.send(op.get_webhook(webhook_id))

    async def update_webhook(
        self,
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
    ) -> UpdatedWebhook:
        return await self.send(
            op.update_webhook(
                webhook_id,
                url=url,
                event_type_ids=event_type_ids,
                custom_headers=custom_headers,
                custom_payload=custom_payload,
                disabled=disabled,
                filter=filter,
                retry_schedule=retry_schedule,
                timeout_seconds=timeout_seconds,
                max_concurrency=max_concurrency,
                signature_scheme=signature_scheme,
                auth=auth,
                tls_client_certificate=tls_client_certificate,
                tls_ca=tls_ca,
                rate_limit_per_second=rate_limit_per_second,
            )
        )

    async def delete_webhook(self, webhook_id: Id) -> Webhook:
        return await self.send(op.delete_webhook(webhook_id))

    async def list_deliveries(
        self,
        webhook_id: Id,
        *,
        status: DeliveryStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        return await self.send_page(
            op.list_deliveries(webhook_id, status=status, limit=limit, cursor=cursor)
        )

    async def get_webhook_stats(self, webhook_id: Id, *, hours: int | None = None) -> DeliveryStats:
        return await self.send(op.get_webhook_stats(webhook_id, hours=hours))

    async def get_sample_event(self, webhook_id: Id) -> SampleEvent:
        return await self.send(op.get_sample_event(webhook_id))

    async def send_test_event(
        self,
        webhook_id: Id,
        *,
        event_type: str | Unset = UNSET,
        payload: JsonObject | Unset = UNSET,
    ) -> SentTestEvent:
        return await self.send(
            op.send_test_event(webhook_id, event_type=event_type, payload=payload)
        )

    async def recover_webhook(self, webhook_id: Id, since: datetime | str) -> Recovering:
        return await self.send(op.recover_webhook(webhook_id, since))

    async def rotate_secret(self, webhook_id: Id) -> SecretRotation:
        return await self.send(op.rotate_secret(webhook_id))

    async def get_delivery(self, delivery_id: Id) -> DeliveryWithAttempts:
        return await self.send(op.get_delivery(delivery_id))

    async def get_delivery_body(self, delivery_id: Id) -> DeliveryBody:
        return await self.send(op.get_delivery_body(delivery_id))

    async def redeliver(self, delivery_id: Id) -> Delivery:
        return await self.send(op.redeliver(delivery_id))

    async def get_auth_mode(self) -> AuthMode:
        return await self.send(op.get_auth_mode())

    async def list_api_keys(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[ApiKey]:
        return await self.send_page(op.list_api_keys(limit=limit, cursor=cursor))

    async def create_api_key(
        self,
        *,
        user_id: int | None = None,
        admin: bool | Unset = UNSET,
        expires_in_seconds: int | None = None,
    ) -> NewApiKey:
        return await self.send(
            op.create_api_key(user_id=user_id, admin=admin, expires_in_seconds=expires_in_seconds)
        )

    async def revoke_api_key(self, api_key_id: Id) -> ApiKey:
        return await self.send(op.revoke_api_key(api_key_id))

    async def create_portal_session(
        self, user_id: int, expires_in_seconds: int | None = None
    ) -> PortalSession:
        return await self.send(op.create_portal_session(user_id, expires_in_seconds))

    async def delete_portal_session(self, portal_session_id: Id) -> ApiKey:
        return await self.send(op.delete_portal_session(portal_session_id))

    async def upload_file(
        self,
        webhook_id: Id,
        file: bytes | IO[bytes],
        *,
        filename: str,
        content_type: str = "application/octet-stream",
        idempotency_key: str | None = None,
        ordering_key: str | None = None,
    ) -> Upload:
        return await self.send(
            op.upload_file(
                webhook_id,
                file,
                filename=filename,
                content_type=content_type,
                idempotency_key=idempotency_key,
                ordering_key=ordering_key,
            )
        )
