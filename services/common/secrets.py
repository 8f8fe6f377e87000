"""Signing secrets encrypted at rest with SECRETS_KEY (Fernet); plaintext rows read as they are.

SECRETS_KEY holds one or more comma-separated Fernet keys: the first encrypts, every
one decrypts (MultiFernet). Rotating the key is therefore: put the new key first and
keep the old one after it, restart, run `python -m services.registration
reencrypt-secrets`, then drop the old key (SECURITY.md).
"""

from __future__ import annotations

import structlog
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = structlog.get_logger(__name__)

# Marks a stored value as a Fernet token; anything else is plaintext, stored while no
# SECRETS_KEY was set (`reencrypt-secrets` encrypts it).
ENCRYPTED_PREFIX = "fernet:"


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with the configured keys (message has no secret)."""


class SecretBox:
    """Encrypts secrets for storage and decrypts them for use; a no-op without keys."""

    def __init__(self, keys: tuple[str, ...] = ()) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def encrypt(self, secret: str) -> str:
        if self._fernet is None:
            return secret
        return ENCRYPTED_PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(ENCRYPTED_PREFIX):
            return stored
        if self._fernet is None:
            raise SecretUnavailable("a signing secret is encrypted but SECRETS_KEY is not set")
        try:
            return self._fernet.decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                "no key in SECRETS_KEY decrypts a stored signing secret"
            ) from None

    def reencrypt(self, stored: str) -> str:
        """The stored value encrypted with the first key (plaintext rows get encrypted)."""
        return self.encrypt(self.decrypt(stored))


def warn_without_key(app: web.Application, box: SecretBox, service: str) -> None:
    """Log loudly at start when signing secrets would be stored in the clear."""

    async def on_startup(_app: web.Application) -> None:
        if not box.enabled:
            log.warning(
                "secrets_key_missing",
                service=service,
                detail="SECRETS_KEY is not set: webhook signing secrets are stored in the "
                "database in plaintext; set SECRETS_KEY to a Fernet key (SECURITY.md)",
            )

    app.on_startup.append(on_startup)
