"""The outbound HTTP client: pooled connections, no redirects, only checked addresses.

Without a proxy the resolver checks what the connection uses. With DELIVERY_PROXY_URL the
dispatcher connects only to the proxy (the operator's choice, often a private address), so
the target is judged before the request is handed over: its name is resolved here and every
address checked. The proxy resolves the name again, so the proxy's own egress policy should
refuse private ranges too (SECURITY.md).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from services.common.urlsafety import (
    UnsafeDestination,
    check_addresses,
    check_literal_host,
    is_forbidden_address,
    parse_ip,
    resolve,
)

DNS_TIMEOUT_SECONDS = 5.0
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)


class GuardedResolver(AbstractResolver):
    """Resolves once and refuses private addresses; aiohttp then connects to what we checked.

    Checking here, rather than before the request, leaves no window for DNS rebinding:
    the addresses returned are the ones the connection uses (Host and TLS server
    name stay the original host).
    """

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_literal_host(host)
        results = await asyncio.wait_for(
            self._inner.resolve(host, port, family), DNS_TIMEOUT_SECONDS
        )
        for result in results:
            address = parse_ip(result["host"])
            if address is None or is_forbidden_address(address):
                raise UnsafeDestination(
                    f"host {host!r} resolves to {result['host']}, not a public address"
                )
        return results

    async def close(self) -> None:
        await self._inner.close()


async def check_destination(url: str, allow_private: bool, via_proxy: bool) -> None:
    """IP literals never reach the resolver, so they are judged here; behind a proxy the
    resolver sees only the proxy, so names are resolved and judged here too."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if check_literal_host(host) or not via_proxy:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await resolve(host, port, DNS_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, UnicodeError) as exc:
        # Not judged, not sent: a failed attempt, retried on the schedule.
        raise UnsafeDestination(
            f"host {host!r} could not be resolved to be checked: {exc!r}"
        ) from None
    check_addresses(host, addresses)


def http_session_ctx(
    allow_private: bool, max_connections: int, proxy_url: str = ""
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        guarded = not allow_private and not proxy_url
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            ttl_dns_cache=10,
            resolver=GuardedResolver() if guarded else None,
            enable_cleanup_closed=True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            # Each request has its own deadline (asyncio.timeout: the webhook's timeout, or
            # the token request's): aiohttp's five-minute default would only add timers.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            proxy=proxy_url or None,
        )
        app[HTTP_SESSION] = session
        yield
        await session.close()

    return ctx
