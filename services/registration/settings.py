"""The registration service's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.common.settings import CommonSettings, Env, redact_url

DEFAULT_PUBLIC_URL = "http://0.0.0.0:8081"


def public_url(value: str) -> str:
    """PUBLIC_URL as portal links start with it: an absolute http(s) URL without credentials,
    query or fragment (the link appends its own), and without a trailing slash."""
    try:
        parts = urlsplit(value)
        fits = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)  # out of range: ValueError
            and parts.username is None
            and not (parts.query or parts.fragment or value.endswith(("?", "#")))
            and not any(c.isspace() for c in value)
        )
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            "must be an absolute http(s) URL without credentials, query or fragment, where "
            "browsers reach the gateway (e.g. https://webhooks.example.com), "
            f"got {redact_url(value)!r}"
        )
    return value.rstrip("/")


@dataclass(frozen=True)
class RegistrationSettings(CommonSettings):
    port: int = 8082
    allow_private_urls: bool = False
    max_json_bytes: int = 65536
    # How long the old signing secret keeps signing deliveries after a rotation.
    secret_rotation_grace_seconds: int = 86400
    # Fernet keys for signing secrets at rest (services/common/secrets.py); kept out of repr.
    secrets_keys: tuple[str, ...] = field(default=(), repr=False)
    # Where browsers reach the gateway: portal links (POST /portal/session) start with it.
    public_url: str = DEFAULT_PUBLIC_URL

    @classmethod
    def from_env(cls, env: Env | None = None) -> RegistrationSettings:
        env = env or Env()
        return cls(
            **CommonSettings.common_from_env(env),  # type: ignore[arg-type]
            port=env.integer("REGISTRATION_PORT", cls.port, 1, 65535),
            allow_private_urls=env.flag("ALLOW_PRIVATE_URLS", cls.allow_private_urls),
            max_json_bytes=env.integer("MAX_JSON_BYTES", cls.max_json_bytes, 1024),
            secret_rotation_grace_seconds=env.integer(
                "SECRET_ROTATION_GRACE_SECONDS", cls.secret_rotation_grace_seconds, 0, 365 * 86400
            ),
            secrets_keys=env.fernet_keys("SECRETS_KEY"),
            public_url=public_url(env.checked("PUBLIC_URL", DEFAULT_PUBLIC_URL, public_url)),
        )
