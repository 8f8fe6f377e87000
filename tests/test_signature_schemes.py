"""ed25519 webhooks end to end: registered, delivered with `v1a`, rotated, switched to HMAC."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from harness.receiver import Receiver
from harness.stack import Stack, StackOptions
from services.common.secrets import ENCRYPTED_PREFIX, SecretBox
from tests.test_client import cryptography_verifies, verify
from tests.test_security import OLD_SECRETS_KEY, call

ENCRYPTED = StackOptions(secrets_keys=(OLD_SECRETS_KEY,))


def received_headers(received: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in received.headers.items()}


@pytest.mark.parametrize("stack_options", [ENCRYPTED])
async def test_an_ed25519_webhook_is_signed_v1a_and_rotates_in_either_scheme(
    stack: Stack, receiver: Receiver
) -> None:
    webhook = await stack.register(receiver.url, signature_scheme="ed25519")
    public = webhook["secret"]
    assert public.startswith("whpk_") and webhook["signature_scheme"] == "ed25519"
    stored = await stack.pool.fetchval(
        "SELECT secret FROM webhook_registrations WHERE id = $1", uuid.UUID(webhook["id"])
    )
    # The private key is kept, encrypted like an HMAC secret.
    assert stored.startswith(ENCRYPTED_PREFIX)
    assert SecretBox((OLD_SECRETS_KEY,)).decrypt(stored).startswith("whsk_")
    status, envelope, _ = await call(stack, "GET", f"/webhook/{webhook['id']}", None)
    assert status == 200 and envelope["data"]["signature_scheme"] == "ed25519"
    assert "secret" not in envelope["data"]

    await stack.upload(webhook["id"])
    [first] = await receiver.wait_for(1)
    headers = received_headers(first)
    assert headers["webhook-signature"].startswith("v1a,")
    assert " " not in headers["webhook-signature"]
    assert cryptography_verifies(public, first.body, headers)
    assert verify(public, first.body, headers).id == headers["webhook-id"]

    # Rotation keeps the scheme: two v1a signatures, the new key's first.
    status, envelope, _ = await call(stack, "POST", f"/webhook/{webhook['id']}/secret/rotate", None)
    assert status == 200, envelope
    rotated = envelope["data"]["secret"]
    assert rotated.startswith("whpk_") and envelope["data"]["signature_scheme"] == "ed25519"
    await stack.upload(webhook["id"])
    second = (await receiver.wait_for(2))[1]
    headers = received_headers(second)
    assert [s[:4] for s in headers["webhook-signature"].split(" ")] == ["v1a,", "v1a,"]
    for key in (public, rotated):
        assert cryptography_verifies(key, second.body, headers)
        verify(key, second.body, headers)

    # PATCH to hmac rotates into HMAC; the ed25519 key signs too for the grace period.
    path = f"/webhook/{webhook['id']}"
    status, envelope, _ = await call(stack, "PATCH", path, None, {"signature_scheme": "hmac"})
    assert status == 200, envelope
    secret = envelope["data"]["secret"]
    assert secret.startswith("whsec_") and envelope["data"]["signature_scheme"] == "hmac"
    assert envelope["data"]["previous_secret_expires_at"] is not None
    await stack.upload(webhook["id"])
    third = (await receiver.wait_for(3))[2]
    headers = received_headers(third)
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1a"]
    Webhook(secret).verify(third.body, headers)
    assert cryptography_verifies(rotated, third.body, headers)
    assert not cryptography_verifies(public, third.body, headers)  # two keys at most

    # The same scheme again changes nothing and shows no secret.
    status, envelope, _ = await call(stack, "PATCH", path, None, {"signature_scheme": "hmac"})
    assert status == 200 and "secret" not in envelope["data"], envelope
    assert "previous_secret_expires_at" not in envelope["data"]


async def test_an_unknown_signature_scheme_is_refused(stack: Stack, receiver: Receiver) -> None:
    body = {"event_type_id": "21f8e1f7-4142-42f9-ac30-74961702b2eb", "user_id": 1}
    body |= {"url": receiver.url, "signature_scheme": "rsa"}
    status, envelope, _ = await call(stack, "POST", "/webhook/register", None, body)
    assert status == 400 and envelope["message"].startswith("signature_scheme"), envelope
    webhook = await stack.register(receiver.url)
    assert webhook["signature_scheme"] == "hmac" and webhook["secret"].startswith("whsec_")
    status, envelope, _ = await call(
        stack, "PATCH", f"/webhook/{webhook['id']}", None, {"signature_scheme": None}
    )
    assert status == 400 and "signature_scheme" in envelope["message"], envelope
