"""One HTTP attempt: the signed request to a delivery's endpoint, and what came back."""

from __future__ import annotations

import asyncio
import ssl
import time
from contextvars import ContextVar

import aiohttp

from services.common.delivery_body import request_body
from services.common.delivery_records import ClaimedDelivery
from services.common.urlsafety import UnsafeDestination

from .client import check_destination
from .metrics import ATTEMPT_DURATION, DISPATCH_WAIT, IN_FLIGHT
from .retry import AttemptResult
from .settings import DispatcherSettings
from .signing import signature_header

USER_AGENT = "webhooks-dispatcher/0.1"
# When the message being handled (each in a task of its own) arrived, for DISPATCH_WAIT.
ARRIVED: ContextVar[float] = ContextVar("arrived")


def request_headers(
    delivery: ClaimedDelivery, body: bytes, timestamp: int, authorization: str | None = None
) -> dict[str, str]:
    headers = dict(delivery.custom_headers)
    lowered = {name.lower() for name in headers}
    if authorization is not None:
        # The webhook's `auth` wins over an `Authorization` stored in its custom_headers.
        for name in [name for name in headers if name.lower() == "authorization"]:
            del headers[name]
        headers["authorization"] = authorization
    if "content-type" not in lowered:
        headers["content-type"] = "application/json"
    if "user-agent" not in lowered:
        headers["user-agent"] = USER_AGENT
    msg_id = str(delivery.id)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    headers["webhook-signature"] = signature_header(delivery.secrets, msg_id, timestamp, body)
    return headers


async def send_request(
    session: aiohttp.ClientSession,
    settings: DispatcherSettings,
    delivery: ClaimedDelivery,
    authorization: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> AttemptResult:
    """POST the delivery's signed body to its endpoint (with `authorization` as its
    `Authorization` header, over `tls` when given); the answer, or what went wrong."""
    timeout = delivery.timeout_seconds or settings.delivery_timeout_seconds
    body = request_body(
        delivery.custom_payload, delivery.event_type, delivery.event_time, delivery.event_data
    )
    headers = request_headers(delivery, body, int(time.time()), authorization)
    started = time.perf_counter()
    status_code: int | None = None
    response_body: str | None = None
    retry_after: str | None = None
    error: str | None = None
    IN_FLIGHT.inc()
    DISPATCH_WAIT.observe(started - ARRIVED.get(started))
    try:
        await check_destination(
            delivery.url,
            settings.allow_private_urls,
            via_proxy=bool(settings.delivery_proxy_url),
        )
        async with asyncio.timeout(timeout):
            async with session.post(
                delivery.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                ssl=True if tls is None else tls,
            ) as response:
                status_code = response.status
                retry_after = response.headers.get("Retry-After")
                raw = await response.content.read(settings.response_body_bytes)
                response_body = raw.decode("utf-8", "replace")
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except UnsafeDestination as exc:
        error = f"refused destination: {exc}"
    except TimeoutError:
        error = f"timeout after {timeout:g} s"
    except aiohttp.ClientError as exc:
        error = f"connection error: {exc}" if str(exc) else f"connection error: {exc!r}"
    except (OSError, ValueError) as exc:
        error = f"request error: {exc!r}"
    finally:
        IN_FLIGHT.dec()
    duration = time.perf_counter() - started
    ATTEMPT_DURATION.observe(duration)
    return AttemptResult(
        status_code=status_code,
        error=error,
        response_body=response_body,
        duration_ms=int(duration * 1000),
        retry_after=retry_after,
    )
