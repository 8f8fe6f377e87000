"""services.dispatcher.signing: `v1` signatures as the standardwebhooks library makes and
verifies them, `v1a` as cryptography verifies them, one per key during a rotation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from services.common.signing_keys import new_signing_key
from services.dispatcher.signing import signature_header

MSG_ID = "0b5e4a52-8c7e-4f32-9d8e-1f3c2a6b7d90"
BODY = orjson.dumps({"type": "upload.completed", "data": {"name": "é ✓ 𝄞", "size": 1}})


def verify_v1(secret: str, header: str, timestamp: int) -> None:
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(timestamp)}
    Webhook(secret).verify(BODY, {**headers, "webhook-signature": header})


@pytest.mark.parametrize(
    "secret",
    [
        new_signing_key("hmac").stored,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # unpadded base64
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix: base64 all the same
    ],
)
def test_v1_is_what_the_library_signs_and_verifies(secret: str) -> None:
    timestamp = int(datetime.now(UTC).timestamp())
    header = signature_header([secret], MSG_ID, timestamp, BODY)
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    assert header == Webhook(secret).sign(MSG_ID, when, BODY.decode())
    verify_v1(secret, header, timestamp)
    # The body given as text signs the same.
    assert signature_header([secret], MSG_ID, timestamp, BODY.decode()) == header


def test_a_rotation_signs_with_each_key_in_its_own_scheme_new_first() -> None:
    new, old = new_signing_key("ed25519"), new_signing_key("hmac")
    timestamp = int(datetime.now(UTC).timestamp())
    header = signature_header([new.stored, old.stored], MSG_ID, timestamp, BODY)
    first, second = header.split(" ")
    assert first.startswith("v1a,") and second.startswith("v1,")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(new.shown.removeprefix("whpk_")))
    public.verify(base64.b64decode(first[4:]), f"{MSG_ID}.{timestamp}.".encode() + BODY)
    verify_v1(old.stored, header, timestamp)


def test_an_empty_secret_is_refused_as_the_library_does() -> None:
    with pytest.raises(EmptyWebhookSecretError):
        signature_header(["whsec_"], MSG_ID, 1, BODY)
