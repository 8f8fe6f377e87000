"""Typed application keys of the dispatcher."""

from aiohttp import web

from .deliver import Dispatcher
from .settings import DispatcherSettings

SETTINGS = web.AppKey("settings", DispatcherSettings)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
