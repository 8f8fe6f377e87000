"""Typed application keys of the registration service."""

from aiohttp import web

from services.common.secrets import SecretBox

from .event_types import EventTypes
from .redelivery import Recoveries
from .settings import RegistrationSettings

SETTINGS = web.AppKey("settings", RegistrationSettings)
RECOVERIES = web.AppKey("recoveries", Recoveries)
EVENT_TYPES = web.AppKey("event_types", EventTypes)
SECRET_BOX = web.AppKey("secret_box", SecretBox)
