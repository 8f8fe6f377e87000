"""API keys and request limits of the HTTP API: who is calling, and how often.

AUTH_MODE=none (the default, for local runs) lets anyone in;
AUTH_MODE=api_key requires `Authorization: Bearer <key>` on every API route. Keys are
stored only as sha256 hashes: a key is 32 random bytes, so a fast hash is safe, and
the lookup by hash is followed by a constant-time compare.

A key is a user key (acts for its one user: another user's id is 403, another user's
objects 404) or an admin key (acts for every user, and is the only kind that may manage
event types: `require_admin`). Handlers ask `current_user` (None: may act for anyone, as
with AUTH_MODE=none), `parse_acting` (a request that names a user: `acting_user`'s rule),
`may_see` (another user's object is missing) and `require_admin`.

A key resolves to its caller through a cache that forgets revoked keys as soon as the
revocation is notified (services/common/revocation.py), so a revoked key is refused
within a second while lookups stay cheap. An expired key is refused (401, saying so) on
its first request past its expiry, cached or not. A portal session's token (a user key
marked `portal`, services/common/api_keys.py) is refused in words a portal link's holder
understands: the link expired, or was revoked. Each key's last use is noted in the
background, at most once a minute (services/common/key_usage.py).
"""

from __future__ import annotations

import hmac
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import asyncpg
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .api_keys import hash_api_key
from .cache import MAX_CACHE_ENTRIES
from .db import DB_POOL
from .key_usage import KeyUsage
from .revocation import RevocableCache, revocation_listener_ctx
from .settings import CommonSettings
from .timefmt import api_time
from .web import ApiError

log = structlog.get_logger(__name__)

# Health, metrics, the API's description and the console's page (their assets too) need no
# key; nor does /auth_mode, which tells the console's sign-in page whether to ask for one.
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/console", "/auth_mode"}
)
OPEN_PREFIXES = ("/docs/assets/", "/console/assets/")


@dataclass(frozen=True)
class Caller:
    """Whom an API key speaks for: one user, or (admin) every user; until when, if it expires."""

    user_id: int | None
    admin: bool = False
    key_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    # A portal session's token; `revoked` only ever for one of those (an ordinary revoked
    # key is not found at all).
    portal: bool = False
    revoked: bool = False


CALLER = web.RequestKey("caller", Caller)

# hash → caller, or None for an unknown key.
KeyCache = RevocableCache[str, Caller | None]


class Unauthorized(ApiError, status=401):
    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError, status=403): ...


class TooManyRequests(ApiError, status=429): ...


async def caller_of_key(pool: asyncpg.Pool, key_hash: str) -> Caller | None:
    """Whom an unrevoked key with this hash speaks for (expired or not), or None. A revoked
    portal session is found too, so that its refusal can say it was revoked."""
    row = await pool.fetchrow(
        "SELECT id, user_id, admin, key_hash, expires_at, portal, revoked_at IS NOT NULL "
        "AS revoked FROM api_keys WHERE key_hash = $1 AND (revoked_at IS NULL OR portal)",
        key_hash,
    )
    if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
        return None
    return Caller(
        row["user_id"], row["admin"], row["id"], row["expires_at"], row["portal"], row["revoked"]
    )


@dataclass(slots=True)
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
        tokens = bucket.tokens + (now - bucket.updated) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket.updated = now
        if tokens >= 1:
            bucket.tokens = tokens - 1
            return None
        bucket.tokens = tokens
        return max(1, math.ceil((1 - tokens) / self.rate))


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
    """The user key's user; None when the caller may act for anyone (admin key, or auth off)."""
    caller = request.get(CALLER)
    return None if caller is None or caller.admin else caller.user_id


def may_see(request: web.Request, owner: int | None) -> bool:
    """Whether the caller may see an object of user `owner`: a user key only its own user's
    (None: no such object). Another user's is answered as missing (404), so its existence
    is not leaked."""
    own = current_user(request)
    return owner is not None and (own is None or owner == own)


def is_admin(request: web.Request) -> bool:
    """An admin key, or AUTH_MODE=none (where anyone may do anything)."""
    caller = request.get(CALLER)
    return caller is None or caller.admin


def require_admin(request: web.Request) -> None:
    """403 unless the caller holds an admin key (AUTH_MODE=none lets everyone through)."""
    if not is_admin(request):
        raise Forbidden("only an admin API key may do this; this key acts for one user")


def acting_user(request: web.Request, requested: int | None) -> int | None:
    """The user a request acts for: `requested` if the caller may act for it, else 403.

    Left out (None), it is the user key's user; for an admin key or with AUTH_MODE=none
    it stays None, and the handler must then ask for it (an admin acts for any user, so
    it has to say which).
    """
    own = current_user(request)
    if requested is None:
        return own
    if own is not None and requested != own:
        raise Forbidden(
            f"user_id {requested} is not the API key's user: a key acts only for its own"
        )
    return requested


class NamesUser(Protocol):
    @property
    def user_id(self) -> int: ...


Named = TypeVar("Named", bound=NamesUser)


def parse_acting(request: web.Request, parse: Callable[[dict[str, Any]], Named]) -> Named:
    """A request that names its `user_id` (a body or a query), checked by `acting_user`.

    `parse` gets the defaults to put under what the client sent: the key's user as
    `user_id`, when a user key calls. Its refusal (400) comes first; then naming a user
    the key may not act for is a 403.
    """
    own = acting_user(request, None)
    parsed = parse({} if own is None else {"user_id": own})
    acting_user(request, parsed.user_id)
    return parsed


def api_guard(
    auth_mode: str, cache: KeyCache, rate_per_second: float, usage: KeyUsage | None = None
) -> Middleware:
    """The middleware that limits the request rate, then authenticates (api_key mode)."""
    limiter = RateLimiter(rate_per_second) if rate_per_second > 0 else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_open(request.path):
            return await handler(request)
        if limiter is not None:
            limit(limiter, caller_of(request))
        if auth_mode == "api_key":
            try:
                request[CALLER] = caller = await authenticate(request, cache)
            except Unauthorized:
                # A new made-up key per request would dodge the per-key bucket: failures
                # also count against the caller's address.
                if limiter is not None and "Authorization" in request.headers:
                    limit(limiter, "ip:" + client_address(request))
                raise
            if usage is not None and caller.key_id is not None:
                usage.seen(caller.key_id)
        return await handler(request)

    return guard


def limit(limiter: RateLimiter, caller: str) -> None:
    wait = limiter.retry_after(caller)
    if wait is not None:
        raise TooManyRequests(
            f"too many requests: at most {limiter.rate:g} a second; retry in {wait} s",
            {"Retry-After": str(wait)},
        )


async def authenticate(request: web.Request, cache: KeyCache) -> Caller:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <API key>'")
    key_hash = hash_api_key(token)
    found, caller = cache.get(key_hash)
    if not found:
        generation = cache.generation
        caller = await caller_of_key(request.app[DB_POOL], key_hash)
        cache.put_if_unchanged(key_hash, caller, generation)
    if caller is None:
        # Never echo the key: it may be a real one pasted in the wrong place.
        raise Unauthorized("the API key is unknown or revoked")
    if caller.revoked:
        raise Unauthorized("the portal link was revoked")
    # Checked on every request, cached or not: an expired key is refused at once.
    if caller.expires_at is not None and caller.expires_at <= datetime.now(UTC):
        if caller.portal:
            raise Unauthorized(f"the portal link expired at {api_time(caller.expires_at)} UTC")
        raise Unauthorized(
            f"the API key expired at {api_time(caller.expires_at)} UTC: "
            "an admin can create a new one (create-api-key, or POST /api_key)"
        )
    return caller


def install_api_guard(app: web.Application, settings: CommonSettings, service: str) -> None:
    """Rate limit and (with AUTH_MODE=api_key) authenticate every API route of `app`."""
    cache: KeyCache = RevocableCache(settings.auth_cache_seconds)
    usage = KeyUsage()
    usage.install(app)
    app.middlewares.append(
        api_guard(settings.auth_mode, cache, settings.rate_limit_per_second, usage)
    )
    if settings.auth_mode == "api_key" and settings.auth_cache_seconds > 0:
        app.cleanup_ctx.append(revocation_listener_ctx(settings.database_url, cache))
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
