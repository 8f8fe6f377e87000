"""API keys and request limits of the HTTP API: who is calling, and how often.

AUTH_MODE=none (the default, for local runs of the original design) lets anyone in;
AUTH_MODE=api_key requires `Authorization: Bearer <key>` on every API route. Keys are
stored only as sha256 hashes: a key is 32 random bytes, so a fast hash is safe, and
the lookup by hash is followed by a constant-time compare. A key resolves to its user
through a small cache, so a revoked key keeps working for at most AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .cache import MAX_CACHE_ENTRIES, TtlCache
from .db import DB_POOL
from .settings import CommonSettings
from .web import ApiError

log = structlog.get_logger(__name__)

KEY_PREFIX = "whk_"
KEY_BYTES = 32
DISPLAY_PREFIX_CHARS = 10
# Health, metrics, the API's description and the console's page (their assets too) need no
# key; nor does /auth_mode, which tells the console's sign-in page whether to ask for one.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/console", "/auth_mode"}
)
OPEN_PREFIXES = ("/docs/assets/", "/console/assets/")
USER_ID = web.RequestKey("user_id", int)


# hash → user, or None for an unknown key.
KeyCache = TtlCache[str, int | None]


class Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    status = 403


class TooManyRequests(ApiError):
    status = 429


def new_api_key() -> str:
    random_part = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return KEY_PREFIX + random_part.rstrip("=")


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS]


async def user_of_key(pool: asyncpg.Pool, key_hash: str) -> int | None:
    """The user of an unrevoked key with this hash, or None."""
    row = await pool.fetchrow(
        "SELECT user_id, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash,
    )
    if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
        return None
    user_id: int = row["user_id"]
    return user_id


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: `rate` requests a second, bursts of twice that."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def retry_after(self, caller: str) -> int | None:
        """None if the request may go ahead, else whole seconds until it may."""
        now = self.clock()
        bucket = self.buckets.get(caller)
        if bucket is None:
            if len(self.buckets) >= MAX_CACHE_ENTRIES:
                self.buckets.clear()
            bucket = self.buckets[caller] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Authorization must be 'Bearer <API key>'")
    return token


def client_address(request: web.Request) -> str:
    """The caller's address: the one the gateway appended to X-Forwarded-For, else the peer."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.remote or "unknown"


def caller_of(request: web.Request) -> str:
    """Whom the rate limit counts: the presented key (by its hash), else the address."""
    header = request.headers.get("Authorization")
    if header:
        return "key:" + hash_api_key(header)
    return "ip:" + client_address(request)


def is_open(path: str) -> bool:
    """Whether `path` is served without a key and without counting against the rate limit."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def current_user(request: web.Request) -> int | None:
    """The key's user with AUTH_MODE=api_key; None when auth is off (anyone may act)."""
    return request.get(USER_ID)


def api_guard(auth_mode: str, cache_seconds: float, rate_per_second: float) -> Middleware:
    """The middleware that limits the request rate, then authenticates (api_key mode)."""
    cache: KeyCache = TtlCache(cache_seconds)
    limiter = RateLimiter(rate_per_second) if rate_per_second > 0 else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_open(request.path):
            return await handler(request)
        if limiter is not None:
            limit(limiter, caller_of(request))
        if auth_mode == "api_key":
            try:
                request[USER_ID] = await authenticate(request, cache)
            except Unauthorized:
                # A new made-up key per request would dodge the per-key bucket: failures
                # also count against the caller's address.
                if limiter is not None and "Authorization" in request.headers:
                    limit(limiter, "ip:" + client_address(request))
                raise
        return await handler(request)

    return guard


def limit(limiter: RateLimiter, caller: str) -> None:
    wait = limiter.retry_after(caller)
    if wait is not None:
        raise TooManyRequests(
            f"too many requests: at most {limiter.rate:g} a second; retry in {wait} s",
            {"Retry-After": str(wait)},
        )


async def authenticate(request: web.Request, cache: KeyCache) -> int:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <API key>'")
    key_hash = hash_api_key(token)
    found, user_id = cache.get(key_hash)
    if not found:
        user_id = await user_of_key(request.app[DB_POOL], key_hash)
        cache.put(key_hash, user_id)
    if user_id is None:
        # Never echo the key: it may be a real one pasted in the wrong place.
        raise Unauthorized("the API key is unknown or revoked")
    return user_id


def install_api_guard(app: web.Application, settings: CommonSettings, service: str) -> None:
    """Rate limit and (with AUTH_MODE=api_key) authenticate every API route of `app`."""
    app.middlewares.append(
        api_guard(settings.auth_mode, settings.auth_cache_seconds, settings.rate_limit_per_second)
    )
    warn_if_open(app, settings.auth_mode, service)


def warn_if_open(app: web.Application, auth_mode: str, service: str) -> None:
    """Log loudly at start when AUTH_MODE=none leaves the API open to anyone.

    The dispatcher serves no API but warns too: it reads the same environment, so one
    service's log is enough to see that a deployment is open.
    """

    async def on_startup(_app: web.Application) -> None:
        if auth_mode == "none":
            log.warning(
                "auth_disabled",
                service=service,
                detail="AUTH_MODE=none: anyone who reaches the API can register webhooks for "
                "any user and upload to any webhook; set AUTH_MODE=api_key (SECURITY.md)",
            )

    app.on_startup.append(on_startup)
