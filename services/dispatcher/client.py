"""The outbound HTTP client: pooled connections, no redirects, only checked addresses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from services.common.urlsafety import (
    UnsafeDestination,
    check_literal_host,
    is_forbidden_address,
    parse_ip,
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


def check_destination(host: str, allow_private: bool) -> None:
    """IP literals never reach the resolver, so they are judged here."""
    if not allow_private:
        check_literal_host(host)


def http_session_ctx(
    allow_private: bool, max_connections: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            ttl_dns_cache=10,
            resolver=None if allow_private else GuardedResolver(),
            enable_cleanup_closed=True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        app[HTTP_SESSION] = session
        yield
        await session.close()

    return ctx
