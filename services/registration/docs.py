"""Serve the OpenAPI document, and Swagger UI (vendored from npm's swagger-ui-dist) to read it."""

from __future__ import annotations

import functools
from pathlib import Path

from aiohttp import web

from services.common.web import dumps

from .openapi import openapi_document

ASSETS = Path(__file__).with_name("docs_assets")
ASSETS_PATH = "/docs/assets"
# The page and its assets come from here only; Swagger UI sets style attributes itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def document_bytes() -> bytes:
    return dumps(openapi_document())


async def openapi_json(_request: web.Request) -> web.Response:
    """The bare document (not the envelope), as OpenAPI tools expect."""
    return web.Response(body=document_bytes(), content_type="application/json")


async def docs_page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(ASSETS / "docs.html", headers=SECURITY_HEADERS)


def add_docs_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/openapi.json", openapi_json)
    router.add_get("/docs", docs_page)
    router.add_static(ASSETS_PATH, ASSETS, append_version=False)
