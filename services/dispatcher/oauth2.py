"""OAuth2 client-credentials tokens for endpoints (RFC 6749 §4.4): fetched once per webhook,
shared by all its deliveries on this replica until shortly before they expire.

The token request goes through the delivery client (`client.py`): the same address checks
as a delivery (connecting to the checked address), DELIVERY_PROXY_URL when set, no
redirects. The client authenticates in the form body; a token endpoint that answers that
with 401 is asked again with HTTP Basic (RFC 6749 §2.3.1), and that webhook then uses Basic.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import orjson

from services.common.urlsafety import UnsafeDestination

from .client import check_destination

# A token is used until `expires_in` less 10 % of it, at most this long before.
MAX_EXPIRY_MARGIN_SECONDS = 30.0
EXPIRY_MARGIN_SHARE = 0.10
# A token endpoint that gives no `expires_in` (RFC 6749 makes it optional): used this long.
DEFAULT_EXPIRES_IN_SECONDS = 300.0
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
MAX_CACHED_TOKENS = 10_000


class TokenUnavailable(Exception):
    """No token could be had; the message says why in words, and holds no secret."""


@dataclass(frozen=True)
class Token:
    access_token: str
    usable_until: float  # time.monotonic()
    # The configuration it was issued for: a PATCH of `auth` makes it stale.
    issued_for: tuple[str, ...]


def credentials_of(auth: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        auth.get(name) or ""
        for name in ("token_url", "client_id", "client_secret", "scope", "audience")
    )


def usable_for(expires_in: float) -> float:
    """Seconds a token that expires in `expires_in` is used for."""
    return expires_in - min(expires_in * EXPIRY_MARGIN_SHARE, MAX_EXPIRY_MARGIN_SECONDS)


class TokenCache:
    """Each webhook's current token; one fetch at a time per webhook, which every delivery
    that needs the token meanwhile waits for."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        timeout_seconds: float,
        allow_private: bool,
        via_proxy: bool,
    ) -> None:
        self.session = session
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.via_proxy = via_proxy
        self.tokens: dict[uuid.UUID, Token] = {}
        self.fetching: dict[uuid.UUID, asyncio.Future[Token]] = {}
        # Webhooks whose token endpoint wants the client's credentials as HTTP Basic.
        self.basic_clients: set[uuid.UUID] = set()
        self.requests = 0  # token requests made (tests count them)

    async def bearer(self, webhook_id: uuid.UUID, auth: dict[str, Any]) -> str:
        """`Bearer <token>` for the webhook (opened `auth`); raises TokenUnavailable."""
        issued_for = credentials_of(auth)
        token = self.tokens.get(webhook_id)
        if (
            token is None
            or token.issued_for != issued_for
            or token.usable_until <= time.monotonic()
        ):
            token = await self.fetched(webhook_id, auth, issued_for)
        return f"Bearer {token.access_token}"

    def drop(self, webhook_id: uuid.UUID, authorization: str) -> None:
        """The endpoint refused this token (401): the next delivery fetches another, unless
        one was fetched meanwhile."""
        token = self.tokens.get(webhook_id)
        if token is not None and authorization == f"Bearer {token.access_token}":
            del self.tokens[webhook_id]

    async def fetched(
        self, webhook_id: uuid.UUID, auth: dict[str, Any], issued_for: tuple[str, ...]
    ) -> Token:
        pending = self.fetching.get(webhook_id)
        if pending is None:
            pending = asyncio.ensure_future(self.fetch(webhook_id, auth, issued_for))
            self.fetching[webhook_id] = pending
            pending.add_done_callback(lambda _: self.fetching.pop(webhook_id, None))
        # Shielded: a waiter's cancellation (stopping) leaves the fetch to the others.
        token = await asyncio.shield(pending)
        if token.issued_for != issued_for:  # fetched for a configuration since changed
            return await self.fetched(webhook_id, auth, issued_for)
        return token

    async def fetch(
        self, webhook_id: uuid.UUID, auth: dict[str, Any], issued_for: tuple[str, ...]
    ) -> Token:
        url = auth["token_url"]
        as_basic = webhook_id in self.basic_clients
        status, answer = await self.request(url, auth, as_basic)
        if status == 401 and not as_basic:
            status, answer = await self.request(url, auth, as_basic=True)
            if 200 <= status < 300:
                self.basic_clients.add(webhook_id)
        if not 200 <= status < 300:
            raise TokenUnavailable(f"token request to {url}: {status} {refusal_of(answer)}")
        access_token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise TokenUnavailable(f"token request to {url}: answer has no access_token")
        expires_in = answer.get("expires_in", DEFAULT_EXPIRES_IN_SECONDS)
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = DEFAULT_EXPIRES_IN_SECONDS
        token = Token(access_token, time.monotonic() + usable_for(float(expires_in)), issued_for)
        if len(self.tokens) >= MAX_CACHED_TOKENS:
            self.tokens.clear()  # bounds memory; a webhook seen again fetches again
        self.tokens[webhook_id] = token
        return token

    async def request(self, url: str, auth: dict[str, Any], as_basic: bool) -> tuple[int, Any]:
        """One token request: its status and its answer as JSON (None if it is not)."""
        self.requests += 1
        form = {"grant_type": "client_credentials"}
        for name in ("scope", "audience"):
            if auth.get(name):
                form[name] = auth[name]
        headers = {"Accept": "application/json"}
        if as_basic:
            pair = f"{quote_plus(auth['client_id'])}:{quote_plus(auth['client_secret'])}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = auth["client_id"]
            form["client_secret"] = auth["client_secret"]
        try:
            await check_destination(url, self.allow_private, self.via_proxy)
            async with asyncio.timeout(self.timeout_seconds):
                async with self.session.post(
                    url, data=form, headers=headers, allow_redirects=False
                ) as response:
                    raw = await response.content.read(MAX_TOKEN_RESPONSE_BYTES)
                    status = response.status
        except UnsafeDestination as exc:
            raise TokenUnavailable(f"token request to {url}: refused destination: {exc}") from None
        except TimeoutError:
            raise TokenUnavailable(
                f"token request to {url}: timeout after {self.timeout_seconds:g} s"
            ) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise TokenUnavailable(f"token request to {url}: {exc or repr(exc)}") from None
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return status, None


def refusal_of(answer: Any) -> str:
    """The token endpoint's `error` (and description, RFC 6749 §5.2), in a few words."""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
        return "(no OAuth2 error in the answer)"
    described = answer.get("error_description")
    words: str = answer["error"][:100]
    if isinstance(described, str) and described:
        words += f": {described[:200]}"
    return words
