"""Receive deliveries from the webhook service: verify them and drop duplicates."""

from webhooks_receiver.deduplication import Deduplicator
from webhooks_receiver.verification import (
    MAX_TOLERANCE,
    Event,
    InvalidSignature,
    MalformedEvent,
    Verifier,
    verify,
)

__all__ = [
    "MAX_TOLERANCE",
    "Deduplicator",
    "Event",
    "InvalidSignature",
    "MalformedEvent",
    "Verifier",
    "verify",
]
