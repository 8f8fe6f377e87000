"""Standard Webhooks signatures, made with the official library."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

# A signer per secret, decoded once rather than per attempt (a few thousand webhooks at once).
signer = functools.lru_cache(maxsize=4096)(Webhook)


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<sig>` for each secret, space-separated (new first during a rotation)."""
    # The library calls .replace(tzinfo=utc): pass an aware UTC time of the same second.
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(signer(secret).sign(msg_id, when, body) for secret in secrets)
