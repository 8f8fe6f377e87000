"""Signing keys of the two Standard Webhooks schemes: HMAC (`v1`) and ed25519 (`v1a`).

A webhook's stored key says its scheme by its prefix: `whsec_` + base64(32 random bytes)
is the HMAC secret both sides share; `whsk_` + base64(32-byte seed) is an ed25519 private
key that never leaves the system, whose public key `whpk_` + base64(32 bytes) is what the
endpoint gets. Stored keys of both kinds are encrypted alike (services/common/secrets.py).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SignatureScheme = Literal["hmac", "ed25519"]
HMAC_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
HMAC_SECRET_BYTES = 32
# How the API describes the `signature_scheme` field of a registration and of a PATCH.
SCHEME_HELP = (
    "`hmac` (v1: `secret` is the shared whsec_ secret) or `ed25519` (v1a: `secret` is the "
    "whpk_ public key to verify with; the private key stays in the system)."
)
RESCHEME_HELP = (
    "A different scheme rotates the signing key into it: the answer carries the new "
    "`secret`, and the old key keeps signing (in its own scheme) for the grace period."
)


@dataclass(frozen=True)
class SigningKey:
    stored: str  # what the system keeps (before encryption)
    shown: str  # what the endpoint gets: the shared secret, or the public key


def new_signing_key(scheme: SignatureScheme) -> SigningKey:
    if scheme == "hmac":
        secret = HMAC_PREFIX + base64.b64encode(secrets.token_bytes(HMAC_SECRET_BYTES)).decode()
        return SigningKey(stored=secret, shown=secret)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    return SigningKey(
        stored=PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode(),
        shown=public_key_of(private),
    )


def is_ed25519(stored: str) -> bool:
    return stored.startswith(PRIVATE_KEY_PREFIX)


def ed25519_private_key(stored: str) -> Ed25519PrivateKey:
    seed = base64.b64decode(stored.removeprefix(PRIVATE_KEY_PREFIX))
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_of(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()
