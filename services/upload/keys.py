"""Typed application keys of the upload service."""

from aiohttp import web

from .settings import UploadSettings

SETTINGS = web.AppKey("settings", UploadSettings)
