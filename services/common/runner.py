"""Start a service: settings from the environment, logging, uvloop, graceful stop on SIGTERM."""

from __future__ import annotations

import gc
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


# A young collection every this many allocations (Python's default is 700). Under load a
# service allocates a few hundred objects per request or delivery while thousands more are
# in flight, and with the default each young collection, and each older one every tenth,
# walks those again: draining a backlog, that was 45 % of the dispatcher's CPU. The older
# generations keep their defaults, so cyclic garbage is collected as Python would.
YOUNG_COLLECTION_EVERY = 50_000


def tune_collector() -> None:
    """What is loaded by start (modules, classes, settings) lives as long as the process:
    kept out of the collector's passes; and young collections made rarer (see above)."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, older, oldest)


def serve(service: str, settings: S, app: web.Application, port: int) -> None:
    """Run the app until SIGINT/SIGTERM, then drain within the grace period."""
    configure_logging(service, settings.log_level, settings.log_format)
    tune_collector()
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
