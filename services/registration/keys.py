"""Typed application keys of the registration service."""

from aiohttp import web

from .redelivery import Recoveries
from .settings import RegistrationSettings

SETTINGS = web.AppKey("settings", RegistrationSettings)
RECOVERIES = web.AppKey("recoveries", Recoveries)
