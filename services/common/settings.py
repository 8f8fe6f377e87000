"""Settings read from the environment; a bad value stops the service with one clear line."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from .amqp_cluster import parse_broker_urls
from .database_url import database_hosts
from .tracing import PROTOCOL_VARIABLES, PROTOCOLS, tracing_requested

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/webhooks"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
AUTH_MODES = ("none", "api_key")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


Number = TypeVar("Number", int, float)


def _converted(name: str, raw: str, convert: Callable[[str], Number], what: str) -> Number:
    try:
        return convert(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


class Env:
    """Typed reads of environment variables, each failure naming the variable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default)

    def _given(self, name: str) -> str | None:
        """The variable's value, or None when it is unset or blank (the default applies)."""
        raw = self._environ.get(name)
        return None if raw is None or raw.strip() == "" else raw

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self._given(name)
        if raw is None:
            return default
        value = _converted(name, raw, int, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            upper = "" if maximum is None else f" and at most {maximum}"
            raise ConfigError(f"{name} must be at least {minimum}{upper}, got {value}")
        return value

    def _finite(self, name: str) -> float | None:
        raw = self._given(name)
        if raw is None:
            return None
        value = _converted(name, raw, float, "a number")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self._finite(name)
        if value is None:
            return default
        if value <= minimum:
            raise ConfigError(f"{name} must be a finite number above {minimum}, got {value:g}")
        return value

    def rate(self, name: str, default: float) -> float:
        """A non-negative finite number; 0 usually means "off"."""
        value = self._finite(name)
        if value is None:
            return default
        if value < 0:
            raise ConfigError(f"{name} must be a finite number, 0 or more, got {value:g}")
        return value

    def share(self, name: str, default: float) -> float:
        """A finite number from 0 to 1: a share of something."""
        value = self._finite(name)
        if value is None:
            return default
        if not 0 <= value <= 1:
            raise ConfigError(f"{name} must be a number from 0 to 1, got {value:g}")
        return value

    def fernet_keys(self, name: str) -> tuple[str, ...]:
        """Comma-separated Fernet keys (first encrypts, all decrypt); never echoed in errors."""
        raw = self._environ.get(name, "")
        keys = tuple(item.strip() for item in raw.split(",") if item.strip())
        for position, key in enumerate(keys, 1):
            if not is_fernet_key(key):
                raise ConfigError(
                    f"{name} key {position} of {len(keys)} is not a Fernet key (32 bytes in "
                    "url-safe base64); make one with: python -c 'from cryptography.fernet "
                    "import Fernet; print(Fernet.generate_key().decode())'"
                )
        return keys

    def flag(self, name: str, default: bool) -> bool:
        raw = self._given(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._environ.get(name, default).strip().lower() or default
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self._environ.get(name, default).strip() or default
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(
                f"{name} must be a {'/'.join(schemes)} URL with a host, got {redact_url(value)!r}"
            )
        return value

    def checked(self, name: str, default: str, parse: Callable[[str], object]) -> str:
        """The raw value once `parse` accepts it; its ValueError becomes one line naming `name`."""
        value = self._environ.get(name, default).strip() or default
        try:
            parse(value)
        except ValueError as exc:
            raise ConfigError(f"{name} {exc}") from None
        return value

    def seconds_list(self, name: str, default: str) -> tuple[float, ...]:
        raw = self._environ.get(name, default)
        items = [item.strip() for item in raw.split(",") if item.strip()]
        values = []
        for item in items:
            try:
                value = float(item)
            except ValueError:
                raise ConfigError(
                    f"{name} must be comma-separated seconds, got {item!r} in {raw!r}"
                ) from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} delays must be finite and not negative, got {item!r}")
            values.append(value)
        return tuple(values)


def is_fernet_key(key: str) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


def redact_url(url: str) -> str:
    """The URL (or comma-separated URLs) without passwords, for messages and logs."""
    if "," in url:
        return ",".join(redact_url(item) for item in url.split(","))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_tracing_protocol(env: Env) -> None:
    """OTLP over HTTP with protobuf is the exporter we ship; refuse any other at start."""
    if tracing_requested(env.environ):
        for name in PROTOCOL_VARIABLES:
            env.choice(name, PROTOCOLS[0], PROTOCOLS)


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: where the database and broker are, how to log."""

    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = DEFAULT_AMQP_URL
    log_level: str = "info"
    log_format: str = "json"
    host: str = "0.0.0.0"
    shutdown_grace_seconds: float = 20.0
    # The HTTP API's protection (services/common/auth.py, SECURITY.md); the dispatcher
    # serves no API, so only its start-up warning about AUTH_MODE=none reads them.
    auth_mode: str = "none"
    auth_cache_seconds: float = 5.0
    # Above what one producer needs for the README's figures (SPEC section 13): it stops
    # floods (a client in a retry loop, a script gone wrong), never ordinary bursts.
    rate_limit_per_second: float = 10000.0

    @staticmethod
    def common_from_env(env: Env) -> dict[str, object]:
        check_tracing_protocol(env)
        return {
            # One server or several of which one accepts writes (common/database_url.py).
            "database_url": env.checked("DATABASE_URL", DEFAULT_DATABASE_URL, database_hosts),
            # One broker or several of one cluster, comma-separated (common/amqp_cluster.py).
            "amqp_url": env.checked("AMQP_URL", DEFAULT_AMQP_URL, parse_broker_urls),
            "log_level": env.choice("LOG_LEVEL", CommonSettings.log_level, LOG_LEVELS),
            "log_format": env.choice("LOG_FORMAT", CommonSettings.log_format, ("json", "console")),
            "host": env.text("BIND_HOST", CommonSettings.host),
            "shutdown_grace_seconds": env.number(
                "SHUTDOWN_GRACE_SECONDS", CommonSettings.shutdown_grace_seconds
            ),
            "auth_mode": env.choice("AUTH_MODE", CommonSettings.auth_mode, AUTH_MODES),
            "auth_cache_seconds": env.rate("AUTH_CACHE_SECONDS", CommonSettings.auth_cache_seconds),
            "rate_limit_per_second": env.rate(
                "RATE_LIMIT_PER_SECOND", CommonSettings.rate_limit_per_second
            ),
        }
