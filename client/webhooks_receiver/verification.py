"""Verify a delivery with the official standardwebhooks library and read it as an Event."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

# standardwebhooks accepts a webhook-timestamp up to 5 minutes from now and has no
# setting for it, so a tolerance can narrow that window but never widen it.
MAX_TOLERANCE = timedelta(minutes=5)


class InvalidSignature(WebhookVerificationError):
    """Not provably sent by the holder of the secret (or too old): answer 401, act on nothing."""


class MalformedEvent(ValueError):
    """Correctly signed, but the body is not a JSON object with `type`, `timestamp` and `data`."""


@dataclass(frozen=True, slots=True)
class Event:
    """A verified delivery."""

    id: str
    """The `webhook-id` header: the delivery id, the same on every retry. Deduplicate on it."""
    timestamp: datetime
    """The body's `timestamp`: when the event happened (UTC), the same on every retry."""
    type: str
    """The body's `type`, e.g. `upload.completed`."""
    data: dict[str, Any]
    """The body's `data`; for `upload.completed`: upload_id, webhook_id, filename, size,
    sha256, content_type, uploaded_at."""
    payload: dict[str, Any]
    """The whole body: `type`, `timestamp`, `data` and the registration's custom_payload keys."""
    signed_at: datetime
    """The `webhook-timestamp` header: when this attempt was signed (UTC)."""


class Verifier:
    """Checks deliveries against one secret, or several while you rotate yours. Build it once."""

    def __init__(
        self, secret: str | Sequence[str], *, tolerance: timedelta = MAX_TOLERANCE
    ) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        if not timedelta(0) < tolerance <= MAX_TOLERANCE:
            raise ValueError(f"tolerance must be more than 0 and at most {MAX_TOLERANCE}")
        # Built here so that a mistyped secret fails at start, not on the first delivery.
        self._webhooks = [_webhook(one) for one in secrets]
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Event:
        """The delivery as an Event; InvalidSignature or MalformedEvent if it is not one."""
        lowered = {name.lower(): value for name, value in headers.items()}
        failure: Exception | None = None
        for webhook in self._webhooks:
            try:
                webhook.verify(body, lowered, json_parse=False)
                break
            except WebhookVerificationError as error:
                failure = error
            except ValueError as error:
                # The library's own parsing gives up with ValueError on a body that is not
                # UTF-8 or a signature that is not `v1,<base64>`: still a bad signature.
                failure = WebhookVerificationError(f"Malformed delivery: {error}")
        else:
            raise InvalidSignature(str(failure)) from failure
        signed_at = datetime.fromtimestamp(float(lowered["webhook-timestamp"]), tz=UTC)
        if abs(datetime.now(UTC) - signed_at) > self._tolerance:
            raise InvalidSignature("Message timestamp outside the tolerance")
        return _event(lowered["webhook-id"], signed_at, body)


def verify(
    secret: str | Sequence[str],
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: timedelta = MAX_TOLERANCE,
) -> Event:
    """Verify one delivery: the raw body bytes as received, and the request's headers.

    `secret` is the `whsec_…` secret from registration, or a list of secrets: the delivery
    passes if any of them verifies it (keep old and new while you switch). The sender itself
    signs with both its new and its old secret for a while after a rotation.

    Raises InvalidSignature (a standardwebhooks WebhookVerificationError) when a header is
    missing, no signature matches, or webhook-timestamp is further than `tolerance` from now;
    MalformedEvent when a correctly signed body is not an event.
    """
    return Verifier(secret, tolerance=tolerance).verify(body, headers)


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (EmptyWebhookSecretError, ValueError) as error:
        # Never echo the secret: it ends up in logs.
        raise ValueError("not a webhook secret: expected whsec_ followed by base64") from error


def _event(webhook_id: str, signed_at: datetime, body: bytes) -> Event:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise MalformedEvent("the body is not JSON") from error
    if not isinstance(payload, dict):
        raise MalformedEvent("the body is not a JSON object")
    event_type, timestamp, data = payload.get("type"), payload.get("timestamp"), payload.get("data")
    if not isinstance(event_type, str):
        raise MalformedEvent("`type` is missing or not a string")
    if not isinstance(data, dict):
        raise MalformedEvent("`data` is missing or not an object")
    if not isinstance(timestamp, str):
        raise MalformedEvent("`timestamp` is missing or not a string")
    try:
        occurred_at = datetime.fromisoformat(timestamp)
    except ValueError as error:
        raise MalformedEvent("`timestamp` is not ISO 8601") from error
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    return Event(
        id=webhook_id,
        timestamp=occurred_at.astimezone(UTC),
        type=event_type,
        data=data,
        payload=payload,
        signed_at=signed_at,
    )
