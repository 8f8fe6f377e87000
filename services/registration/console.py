"""Serve the web console (/console): one page and its static files, vendored and versioned,
and the open GET /auth_mode that tells the page which sign-in to show.

The console is a small ES-module application with no framework that calls the JSON API
with the user's key (the README's Console section says why).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import Field

from services.common.api.edge import respond
from services.common.api.shapes import Shape
from services.common.web import NotFound

from .keys import SETTINGS

ASSETS = Path(__file__).with_name("console_assets")
PAGE = "console.html"
ASSETS_PREFIX = "/console/assets"
ASSETS_PLACEHOLDER = "{{ASSETS}}"
# Assets only from here; no inline script or style, and (where the browser supports it)
# Trusted Types, so assigning a string to innerHTML throws instead of parsing it as HTML.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page names the assets' version, so it is checked again every time.
    "Cache-Control": "no-cache",
}
# An asset's URL changes with the contents of any asset: it never changes under a URL.
IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".txt": "text/plain",
}


class AuthMode(Shape):
    auth_mode: Literal["none", "api_key"] = Field(
        description="`api_key`: every API route needs `Authorization: Bearer <API key>`; "
        "`none`: requests name their `user_id`."
    )


@functools.cache
def asset_files() -> dict[str, tuple[str, bytes]]:
    """Name → (content type, contents) of each servable file, read once: a fixed set, so no
    path from a request ever reaches the disk."""
    return {
        path.name: (CONTENT_TYPES[path.suffix], path.read_bytes())
        for path in sorted(ASSETS.iterdir())
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


@functools.cache
def assets_version() -> str:
    digest = hashlib.sha256()
    for name, (_, contents) in asset_files().items():
        digest.update(name.encode() + b"\0" + contents + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def page_bytes() -> bytes:
    page = (ASSETS / PAGE).read_text()
    return page.replace(ASSETS_PLACEHOLDER, f"{ASSETS_PREFIX}/{assets_version()}").encode()


async def console_page(_request: web.Request) -> web.Response:
    return web.Response(
        body=page_bytes(), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )


async def console_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    asset = asset_files().get(name)
    if asset is None:
        raise NotFound(f"no console asset {name!r}")
    # A page from before an upgrade asks for the old version: answer, but do not cache.
    current = request.match_info["version"] == assets_version()
    return web.Response(
        body=asset[1],
        content_type=asset[0],
        charset="utf-8",
        headers={
            "Cache-Control": IMMUTABLE if current else "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def auth_mode(request: web.Request) -> web.Response:
    """Open, so that a page without a key can ask which sign-in to show."""
    return respond(AuthMode.model_validate({"auth_mode": request.app[SETTINGS].auth_mode}))


def add_console_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/console", console_page)
    router.add_get("/auth_mode", auth_mode)
    router.add_get(f"{ASSETS_PREFIX}/{{version:[0-9a-f]+}}/{{name:[A-Za-z0-9_.-]+}}", console_asset)
