"""The thin layer under `AsyncWebhooksClient`: the connection, the envelope, typed errors
and paging. The generated methods (async_client.py) hand it each generated request.

sync_base.py, the blocking `BaseClient`, is generated from this file by unasync
(client/publisher/build_client.py, run by `make` and by the package's build): edit this
one, and write nothing here that would not also be right without `async` and `await`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Self

import httpx

from .envelope import DEFAULT_TIMEOUT, AsyncAnswer, Page, default_headers, envelope_of, page_of
from .generated.client import Client
from .generated.types import UNSET, Unset


class AsyncBaseClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # The generated client, for calling a generated operation directly. A plain Client
        # even for the admin routes: with AUTH_MODE=none they take no key.
        self.api = Client(
            base_url=base_url,
            headers=default_headers(api_key),
            timeout=httpx.Timeout(timeout),
            httpx_args={"transport": transport} if transport is not None else {},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.api.get_async_httpx_client().aclose()

    async def data(self, answer: AsyncAnswer) -> Any:
        """The envelope's `data` of a generated operation's answer, or its `ApiError`."""
        return envelope_of(await answer).data

    async def page(self, answer: AsyncAnswer) -> Page[Any]:
        """One page of a list (`items`, `next_cursor`), or its `ApiError`."""
        return page_of(await answer)

    async def every_item(self, page_at: Callable[[str | Unset], AsyncAnswer]) -> AsyncIterator[Any]:
        """Every item of a list, following `next_cursor` (`page_at(cursor)` asks each page)."""
        cursor: str | Unset = UNSET
        while True:
            page = await self.page(page_at(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor
