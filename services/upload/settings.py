"""The upload service's settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common.settings import CommonSettings, Env


@dataclass(frozen=True)
class UploadSettings(CommonSettings):
    port: int = 8083
    upload_dir: Path = Path("./data/uploads")
    max_upload_bytes: int = 104857600
    max_json_bytes: int = 65536
    publish_timeout_seconds: float = 2.0
    relay_interval_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: Env | None = None) -> UploadSettings:
        env = env or Env()
        return cls(
            **CommonSettings.common_from_env(env),  # type: ignore[arg-type]
            port=env.integer("UPLOAD_PORT", cls.port, 1, 65535),
            upload_dir=Path(env.text("UPLOAD_DIR", str(cls.upload_dir))),
            max_upload_bytes=env.integer("MAX_UPLOAD_BYTES", cls.max_upload_bytes, 0),
            max_json_bytes=env.integer("MAX_JSON_BYTES", cls.max_json_bytes, 1024),
            publish_timeout_seconds=env.number(
                "PUBLISH_TIMEOUT_SECONDS", cls.publish_timeout_seconds
            ),
            relay_interval_seconds=env.number(
                "OUTBOX_RELAY_INTERVAL_SECONDS", cls.relay_interval_seconds
            ),
        )
