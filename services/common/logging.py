"""structlog set-up: JSON lines by default, console when asked; secrets never logged."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from opentelemetry import trace

from .tracing import tracing_requested

# Keys whose values must never reach a log line, compared case-insensitively.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "secret",
        "secrets",
        "previous_secret",
        "secrets_key",
        "signature",
        "webhook-signature",
        "password",
        "api_key",
    }
)


# Keys already seen not to be sensitive: a line's keys are checked in one set operation, and
# only a key new to the process is lowercased and looked up. Bounded: keys are field names.
_PLAIN_KEYS: set[str] = set()
MAX_PLAIN_KEYS = 4096


def redact_sensitive(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in event_dict.keys() - _PLAIN_KEYS:
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "***"
        elif len(_PLAIN_KEYS) < MAX_PLAIN_KEYS:
            _PLAIN_KEYS.add(key)
    return event_dict


class UtcTimestamp:
    """`timestamp` as structlog's TimeStamper(fmt="iso", utc=True) writes it
    (`2026-11-29T16:38:45.123456Z`, no fraction on a whole second), with the date and time
    of day formatted once a second rather than on every line."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        # (second, its "YYYY-MM-DDTHH:MM:SS"), replaced whole so threads may share it.
        self.last: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        second, micro = divmod(self.clock() // 1000, 1_000_000)
        last = self.last
        if last[0] != second:
            last = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
            self.last = last
        event_dict["timestamp"] = f"{last[1]}.{micro:06d}Z" if micro else f"{last[1]}Z"
        return event_dict


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """`trace_id` and `span_id` of the span in progress, lowercase hex as in traceparent."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def json_text(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, **kwargs).decode()


def instance_name() -> str:
    """This replica among the service's others: host and pid, unique under any runner
    (honcho, compose, Kubernetes), where a container's host name is its own."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ReplicaIdentity:
    """Stamps `service` and `instance` on every line, threads and library loggers included
    (a context variable bound at start would not reach a thread's lines)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.instance = instance_name()

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict["service"] = self.service
        event_dict["instance"] = self.instance
        return event_dict


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    """Configure structlog and route the standard library's loggers through it."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        ReplicaIdentity(service),
        structlog.processors.add_log_level,
        UtcTimestamp(),
        redact_sensitive,
    ]
    if tracing_requested():
        # Only then: with tracing off a log line costs nothing more than before.
        shared.append(add_trace_ids)
    # orjson renders bytes, hence the bytes logger factory below.
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=orjson.dumps)
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=(
            structlog.WriteLoggerFactory(sys.stdout)
            if fmt == "console"
            else structlog.BytesLoggerFactory(sys.stdout.buffer)
        ),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()

    # Libraries (aio-pika, asyncpg, aiohttp) log through the standard library, whose
    # formatter must return text: orjson's bytes would be written as their repr.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer
                if fmt == "console"
                else structlog.processors.JSONRenderer(serializer=json_text),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
    # The canonical request line replaces aiohttp's access log.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
