"""Typed application keys of the registration service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from services.common.secrets import SecretBox

from .redelivery import Recoveries
from .settings import RegistrationSettings

if TYPE_CHECKING:
    # event_types.py serves its handler with this key, so it imports this module.
    from .event_types import EventTypes

SETTINGS = web.AppKey("settings", RegistrationSettings)
RECOVERIES = web.AppKey("recoveries", Recoveries)
EVENT_TYPES: web.AppKey[EventTypes] = web.AppKey("event_types")
SECRET_BOX = web.AppKey("secret_box", SecretBox)
