"""Idempotency-Key rules shared by uploads and events: the window and the claim's rounds."""

from __future__ import annotations

# How long an Idempotency-Key answers with its first request (Stripe's 24 hours).
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
# Rounds of "release an expired key, insert, else read the holder" before giving up;
# a second round is needed only when a key expires or its holder is pruned meanwhile.
IDEMPOTENCY_ROUNDS = 3


class IdempotencyContention(Exception):
    """The key kept changing hands while this request tried to claim it."""
