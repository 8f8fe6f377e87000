"""How the dispatcher authenticates to an endpoint (SPEC §17): a webhook's `auth` and TLS
client certificate, their secret parts sealed with SECRETS_KEY for storage and opened again
only to make a request."""

from __future__ import annotations

import base64
from typing import Any

from .secrets import SecretBox

BASIC = "basic"
OAUTH2 = "oauth2_client_credentials"
# The secret field of each kind: stored encrypted, never shown.
SECRET_FIELD = {BASIC: "password", OAUTH2: "client_secret"}


def seal(auth: dict[str, Any] | None, box: SecretBox) -> dict[str, Any] | None:
    """`auth` as it is stored: its secret field encrypted (SECRETS_KEY)."""
    if auth is None:
        return None
    secret = SECRET_FIELD[auth["type"]]
    return {**auth, secret: box.encrypt(auth[secret])}


def unseal(stored: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A stored `auth` with its secret field decrypted, for the dispatcher's request only;
    raises SecretUnavailable when SECRETS_KEY cannot decrypt it."""
    secret = SECRET_FIELD[stored["type"]]
    return {**stored, secret: box.decrypt(stored[secret])}


def seal_certificate(certificate: dict[str, Any] | None, box: SecretBox) -> dict[str, Any] | None:
    """A `tls_client_certificate` as it is stored: its private key encrypted."""
    if certificate is None:
        return None
    return {**certificate, "private_key": box.encrypt(certificate["private_key"])}


def unseal_certificate(stored: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """A stored `tls_client_certificate` with its private key decrypted, for the dispatcher."""
    return {**stored, "private_key": box.decrypt(stored["private_key"])}


def seal_columns(given: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    """Those of a webhook's auth, tls_client_certificate and tls_ca given, as stored."""
    sealers = {"auth": seal, "tls_client_certificate": seal_certificate}
    return {
        name: sealers[name](value, box) if name in sealers else value
        for name, value in given.items()
    }


def resealed(
    auth: dict[str, Any] | None, certificate: dict[str, Any] | None, box: SecretBox
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A webhook's stored auth and tls_client_certificate encrypted with SECRETS_KEY's
    first key (`reencrypt-secrets`); raises SecretUnavailable."""
    return (
        None if auth is None else seal(unseal(auth, box), box),
        None
        if certificate is None
        else seal_certificate(unseal_certificate(certificate, box), box),
    )


def basic_authorization(username: str, password: str) -> str:
    """The `Authorization` value of HTTP Basic (RFC 7617), UTF-8."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
