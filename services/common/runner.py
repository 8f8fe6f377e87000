"""Start a service: settings from the environment, logging, uvloop, graceful stop on SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import structlog
import uvloop
from aiohttp import web

from .logging import configure_logging
from .protocol import answer_parser_errors_with_envelopes
from .settings import CommonSettings, ConfigError
from .web import HTTP_PARSER_LIMITS

S = TypeVar("S", bound=CommonSettings)


def load_settings(from_env: Callable[[], S], service: str) -> S:
    """Settings, or exit 2 with one clear line naming the bad variable."""
    try:
        return from_env()
    except ConfigError as exc:
        print(f"{service}: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(service: str, settings: S, app: web.Application, port: int) -> None:
    """Run the app until SIGINT/SIGTERM, then drain within the grace period."""
    configure_logging(service, settings.log_level, settings.log_format)
    structlog.get_logger(service).info("service_starting", port=port)
    answer_parser_errors_with_envelopes()
    web.run_app(
        app,
        host=settings.host,
        port=port,
        shutdown_timeout=settings.shutdown_grace_seconds,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
        max_line_size=HTTP_PARSER_LIMITS["max_line_size"],
        max_field_size=HTTP_PARSER_LIMITS["max_field_size"],
        max_headers=HTTP_PARSER_LIMITS["max_headers"],
    )
