"""Typed application keys of the upload service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .settings import UploadSettings

if TYPE_CHECKING:
    from .relay import OutboxCleanup

SETTINGS = web.AppKey("settings", UploadSettings)
OUTBOX_CLEANUP: web.AppKey[OutboxCleanup] = web.AppKey("outbox_cleanup")
