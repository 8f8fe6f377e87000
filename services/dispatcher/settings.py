"""The dispatcher's settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.settings import CommonSettings, Env

# Far above any sensible bound; RabbitMQ takes any 64-bit length.
MAX_DEAD_LETTER_LENGTH = 100_000_000


@dataclass(frozen=True)
class DispatcherSettings(CommonSettings):
    port: int = 8084
    delivery_timeout_seconds: float = 10.0
    retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    allow_private_urls: bool = False
    prefetch: int = 4096
    per_endpoint_concurrency: int = 32
    max_connections: int = 4096
    response_body_bytes: int = 4096
    sweep_interval_seconds: float = 30.0
    disable_after_seconds: float = 5 * 86400.0
    # The dead-letter queue's bound (services/common/broker.py, dead_letter_arguments): about
    # 50 MB of messages at most, kept a week; every failed delivery stays in the database.
    dead_letter_max_length: int = 100_000
    dead_letter_max_age_seconds: int = 7 * 86400
    # Fernet keys for signing secrets at rest (services/common/secrets.py); kept out of repr.
    secrets_keys: tuple[str, ...] = field(default=(), repr=False)
    # An HTTP forward proxy every delivery goes through (CONNECT for https); "" for none.
    delivery_proxy_url: str = field(default="", repr=False)
    # The share of successful attempts that write a `delivery_attempt` line (0.01: one in
    # a hundred, at random; 1: all). Every other outcome is always written, metrics count
    # all, and every attempt is in delivery_attempts. One line per success was 6-10 % of
    # the dispatcher's CPU at full load, enough to fall behind the ingest (issue 30).
    log_success_sample: float = 0.01

    @classmethod
    def from_env(cls, env: Env | None = None) -> DispatcherSettings:
        env = env or Env()
        return cls(
            **CommonSettings.common_from_env(env),  # type: ignore[arg-type]
            port=env.integer("DISPATCHER_PORT", cls.port, 1, 65535),
            delivery_timeout_seconds=env.number(
                "DELIVERY_TIMEOUT_SECONDS", cls.delivery_timeout_seconds
            ),
            retry_schedule=env.seconds_list(
                "RETRY_SCHEDULE", ",".join(f"{delay:g}" for delay in cls.retry_schedule)
            ),
            allow_private_urls=env.flag("ALLOW_PRIVATE_URLS", cls.allow_private_urls),
            prefetch=env.integer("DISPATCH_PREFETCH", cls.prefetch, 1, 65535),
            per_endpoint_concurrency=env.integer(
                "DISPATCH_PER_ENDPOINT_CONCURRENCY", cls.per_endpoint_concurrency, 1
            ),
            max_connections=env.integer("DISPATCH_MAX_CONNECTIONS", cls.max_connections, 1),
            sweep_interval_seconds=env.number("SWEEP_INTERVAL_SECONDS", cls.sweep_interval_seconds),
            disable_after_seconds=env.number("DISABLE_AFTER_SECONDS", cls.disable_after_seconds),
            dead_letter_max_length=env.integer(
                "DEAD_LETTER_MAX_LENGTH", cls.dead_letter_max_length, 1, MAX_DEAD_LETTER_LENGTH
            ),
            # 0: no age limit, the length alone bounds the queue.
            dead_letter_max_age_seconds=env.integer(
                "DEAD_LETTER_MAX_AGE_SECONDS", cls.dead_letter_max_age_seconds, 0, 365 * 86400
            ),
            secrets_keys=env.fernet_keys("SECRETS_KEY"),
            log_success_sample=env.share("LOG_SUCCESS_SAMPLE", cls.log_success_sample),
            delivery_proxy_url=env.url("DELIVERY_PROXY_URL", "", ("http",))
            if env.environ.get("DELIVERY_PROXY_URL", "").strip()
            else "",
        )
