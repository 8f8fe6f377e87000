"""Standard Webhooks signatures: `v1` (HMAC, the official library) and `v1a` (ed25519)."""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from services.common.signing_keys import ed25519_private_key, is_ed25519

# A signer per secret, decoded once rather than per attempt (a few thousand webhooks at once).
hmac_signer = functools.lru_cache(maxsize=4096)(Webhook)
ed25519_signer = functools.lru_cache(maxsize=4096)(ed25519_private_key)


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """One `v1,<sig>` or `v1a,<sig>` over `{id}.{timestamp}.{body}`, as the key's scheme says."""
    if is_ed25519(secret):
        signed = ed25519_signer(secret).sign(f"{msg_id}.{timestamp}.{body}".encode())
        return "v1a," + base64.b64encode(signed).decode()
    # The library calls .replace(tzinfo=utc): pass an aware UTC time of the same second.
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return hmac_signer(secret).sign(msg_id, when, body)


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """One signature per key, space-separated (new first during a rotation, which may have
    changed the scheme: each key signs in its own)."""
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)
