"""Typed application keys of the registration service."""

from aiohttp import web

from .settings import RegistrationSettings

SETTINGS = web.AppKey("settings", RegistrationSettings)
