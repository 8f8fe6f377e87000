"""Typed application keys of the registration service."""

from aiohttp import web

from .event_types import EventTypes
from .redelivery import Recoveries
from .settings import RegistrationSettings

SETTINGS = web.AppKey("settings", RegistrationSettings)
RECOVERIES = web.AppKey("recoveries", Recoveries)
EVENT_TYPES = web.AppKey("event_types", EventTypes)
