"""The registration service's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.settings import CommonSettings, Env


@dataclass(frozen=True)
class RegistrationSettings(CommonSettings):
    port: int = 8082
    allow_private_urls: bool = False
    max_json_bytes: int = 65536
    # How long the old signing secret keeps signing deliveries after a rotation.
    secret_rotation_grace_seconds: int = 86400
    # Fernet keys for signing secrets at rest (services/common/secrets.py); kept out of repr.
    secrets_keys: tuple[str, ...] = field(default=(), repr=False)

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
        )
