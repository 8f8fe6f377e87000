"""Verify a delivery and read it as an Event.

HMAC (`whsec_` secret, `v1,` signatures) is checked by the official standardwebhooks
library; ed25519 (`whpk_` public key, `v1a,` signatures, Standard Webhooks' asymmetric
scheme) by the `cryptography` package, over the same `{id}.{timestamp}.{body}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature as BadEd25519Signature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

# standardwebhooks accepts a webhook-timestamp up to 5 minutes from now and has no
# setting for it, so a tolerance can narrow that window but never widen it.
MAX_TOLERANCE = timedelta(minutes=5)
PUBLIC_KEY_PREFIX = "whpk_"
# Checks one delivery's signature against one key; raises WebhookVerificationError.
Check = Callable[[bytes, Mapping[str, str]], None]


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
        self._checks = [_check_for(one) for one in secrets]
        self._tolerance = tolerance

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Event:
        """The delivery as an Event; InvalidSignature or MalformedEvent if it is not one."""
        lowered = {name.lower(): value for name, value in headers.items()}
        failure: Exception | None = None
        for check in self._checks:
            try:
                check(body, lowered)
                break
            except WebhookVerificationError as error:
                failure = error
            except ValueError as error:
                # The library's own parsing gives up with ValueError on a body that is not
                # UTF-8 or a signature that is not `v1,<base64>`: still a bad signature.
                failure = WebhookVerificationError(f"Malformed delivery: {error}")
        else:
            raise InvalidSignature(str(failure)) from failure
        try:
            signed_at = datetime.fromtimestamp(int(lowered["webhook-timestamp"]), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise InvalidSignature("Invalid Signature Headers") from None
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

    `secret` is the `whsec_…` secret from registration (or, for a webhook registered with
    signature_scheme ed25519, its `whpk_…` public key), or a list of them: the delivery
    passes if any of them verifies it (keep old and new while you switch, even across a
    change of scheme). The sender itself signs with both its new and its old key for a
    while after a rotation.

    Raises InvalidSignature (a standardwebhooks WebhookVerificationError) when a header is
    missing, no signature matches, or webhook-timestamp is further than `tolerance` from now;
    MalformedEvent when a correctly signed body is not an event.
    """
    return Verifier(secret, tolerance=tolerance).verify(body, headers)


def _check_for(secret: str) -> Check:
    if secret.startswith(PUBLIC_KEY_PREFIX):
        return _ed25519_check(secret)
    try:
        webhook = Webhook(secret)
    except (EmptyWebhookSecretError, ValueError) as error:
        # Never echo the secret: it ends up in logs.
        raise ValueError("not a webhook secret: expected whsec_ followed by base64") from error

    def check(body: bytes, headers: Mapping[str, str]) -> None:
        webhook.verify(body, dict(headers), json_parse=False)

    return check


def _ed25519_check(public: str) -> Check:
    try:
        raw = base64.b64decode(public.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not a public key: expected whpk_ followed by base64 of 32 bytes") from (
            error
        )

    def check(body: bytes, headers: Mapping[str, str]) -> None:
        try:
            msg_id = headers["webhook-id"]
            timestamp = headers["webhook-timestamp"]
            signatures = headers["webhook-signature"]
        except KeyError:
            raise WebhookVerificationError("Missing required headers") from None
        signed = f"{msg_id}.{timestamp}.".encode() + body
        for item in signatures.split(" "):
            version, _, encoded = item.partition(",")
            if version != "v1a":
                continue
            try:
                key.verify(base64.b64decode(encoded, validate=True), signed)
                return
            except (BadEd25519Signature, binascii.Error, ValueError):
                continue
        raise WebhookVerificationError("No matching signature found")

    return check


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
