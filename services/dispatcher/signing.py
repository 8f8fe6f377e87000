"""Standard Webhooks signatures: `v1` (HMAC-SHA256) and `v1a` (ed25519).

`v1` is computed here as the official library does (tests verify it with the library):
the secret is decoded once per secret rather than per attempt, and each signature is one
call into OpenSSL instead of building a signer and an HMAC object for every request.
"""

from __future__ import annotations

import base64
import functools
import hmac

from standardwebhooks.webhooks import EmptyWebhookSecretError

from services.common.signing_keys import HMAC_PREFIX, ed25519_private_key, is_ed25519

# A key per secret, decoded once rather than per attempt (a few thousand webhooks at once).
ed25519_signer = functools.lru_cache(maxsize=4096)(ed25519_private_key)


@functools.lru_cache(maxsize=4096)
def hmac_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret, decoded as the standardwebhooks library does
    (an unprefixed secret is taken as base64 too; padding is optional)."""
    key = base64.b64decode(secret.removeprefix(HMAC_PREFIX) + "==")
    if not key:
        raise EmptyWebhookSecretError("webhook secret may not be empty")
    return key


def signature(secret: str, signed: bytes) -> str:
    """One `v1,<sig>` or `v1a,<sig>` over `signed` ({id}.{timestamp}.{body}), as the key's
    scheme says."""
    if is_ed25519(secret):
        return "v1a," + base64.b64encode(ed25519_signer(secret).sign(signed)).decode()
    return "v1," + base64.b64encode(hmac.digest(hmac_key(secret), signed, "sha256")).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One signature per key, space-separated (new first during a rotation, which may have
    changed the scheme: each key signs in its own)."""
    data = body if isinstance(body, bytes) else body.encode()
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, data)
    if len(secrets) == 1:
        return signature(secrets[0], signed)
    return " ".join([signature(secret, signed) for secret in secrets])
