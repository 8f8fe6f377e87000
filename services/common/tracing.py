"""OpenTelemetry tracing: set up once from the standard OTEL_* variables, off when no endpoint.

The SDK reads the standard variables itself (sampler, headers, timeouts, batch sizes,
resource attributes); we add the service's own name as the default `service.name`.
While no OTLP endpoint is set (and OTEL_TRACES_EXPORTER is not `console`) nothing is
installed: no provider, no exporter thread, no instrumentation, and every function here
returns at its first test.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
    service_attributes,
    url_attributes,
    user_agent_attributes,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = structlog.get_logger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# The one exporter we ship; settings.py refuses any other protocol with one clear line.
PROTOCOLS = ("http/protobuf",)
# OTEL_TRACES_EXPORTER=console: spans as JSON on stderr, to see traces without a collector
# (stdout is the JSON log stream, which must stay one log object per line).
CONSOLE_EXPORTER = "console"
TRACER_NAME = "webhooks"
# Our own span attributes (what annotate() adds, the delivery's id and attempt number).
ATTRIBUTE_PREFIX = "webhooks."
DELIVERY_ID = "webhooks.delivery_id"
ATTEMPT = "webhooks.attempt"
# W3C trace context as a dict of headers: what messages and outbox rows carry.
Carrier = dict[str, str]


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OTLP endpoint is set, or OTEL_TRACES_EXPORTER=console: the one switch
    between tracing and no cost at all.

    The standard off switches win: OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = exporter_name(env)
    if exporter == "none":
        return False
    if exporter == CONSOLE_EXPORTER:
        return True
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def exporter_name(env: Mapping[str, str]) -> str:
    return env.get("OTEL_TRACES_EXPORTER", "").strip().lower()


def span_exporter() -> SpanExporter:
    if exporter_name(os.environ) == CONSOLE_EXPORTER:
        return ConsoleSpanExporter(out=sys.stderr)
    return OTLPSpanExporter()


@dataclass
class Tracing:
    """What one process installed: undone, and the last spans flushed, when its app stops."""

    provider: TracerProvider
    tracer: trace.Tracer
    instrumentors: tuple[AioPikaInstrumentor | AsyncPGInstrumentor, ...]

    def shutdown(self) -> None:
        for instrumentor in self.instrumentors:
            instrumentor.uninstrument()
        self.provider.shutdown()  # flushes the BatchSpanProcessor, then stops its thread


# One per process: the instrumentations patch aio-pika and asyncpg classes process-wide.
_active: Tracing | None = None


def start_tracing(service: str) -> Tracing:
    """Install the SDK provider, the exporter (OTLP/HTTP, or the console's) and the broker
    and database spans."""
    # OTEL_SERVICE_NAME or service.name in OTEL_RESOURCE_ATTRIBUTES win over our default.
    from_env = OTELResourceDetector().detect().attributes
    name = str(from_env.get(service_attributes.SERVICE_NAME) or service)
    resource = Resource.create({service_attributes.SERVICE_NAME: name})
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); endpoint and headers from
    # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and _HEADERS, read by the SDK itself.
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(span_exporter()))
    instrumentors = (AioPikaInstrumentor(), AsyncPGInstrumentor())  # type: ignore[no-untyped-call]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider)
    return Tracing(provider, provider.get_tracer(TRACER_NAME), instrumentors)


def tracing_ctx(service: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """Tracing for the app's lifetime; first in cleanup_ctx, so it is flushed last."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        global _active
        owner = _active is None and tracing_requested()
        if owner:
            _active = start_tracing(service)
            log.info("tracing_started", service=service)
        try:
            yield
        finally:
            if owner and _active is not None:
                active, _active = _active, None
                active.shutdown()

    return ctx


def active_tracer() -> trace.Tracer | None:
    return None if _active is None else _active.tracer


def server_span_middleware(quiet_paths: frozenset[str]) -> Middleware:
    """The HTTP server span of each request (not of probes and scrapes), W3C context in."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        tracer = active_tracer()
        if tracer is None:
            return await handler(request)
        if request.path in quiet_paths:
            with background():  # nor the database check of each probe
                return await handler(request)
        route = request.match_info.route.resource
        template = route.canonical if route is not None else None
        attributes: dict[str, str | int] = {
            http_attributes.HTTP_REQUEST_METHOD: request.method,
            url_attributes.URL_SCHEME: request.scheme,
            url_attributes.URL_PATH: request.path,
        }
        if template is not None:
            attributes[http_attributes.HTTP_ROUTE] = template
        if user_agent := request.headers.get("User-Agent"):
            attributes[user_agent_attributes.USER_AGENT_ORIGINAL] = user_agent
        with tracer.start_as_current_span(
            f"{request.method} {template}" if template else request.method,
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            response = await handler(request)
            span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    return middleware


def annotate_span(fields: Mapping[str, Any]) -> None:
    """Copy a request's canonical log fields (ids, sizes) onto the current span."""
    if _active is None:
        return
    span = trace.get_current_span()
    for key, value in fields.items():
        if value is not None:
            plain = value if isinstance(value, str | int | float | bool) else str(value)
            span.set_attribute(ATTRIBUTE_PREFIX + key, plain)


def current_carrier() -> Carrier | None:
    """The current span's W3C context, to keep with work that is published later."""
    if _active is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: Carrier = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def continued(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block in the trace `carrier` names (work resumed from the outbox)."""
    if _active is None or not carrier:
        yield
        return
    token = context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def joined(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block in the trace `carrier` names if it is another than the current one:
    one delivery of a batch that several requests share continues its own request's
    trace, while a delivery of the trace the message came in keeps the consumer span."""
    if _active is None or not carrier:
        yield
        return
    extracted = propagate.extract(dict(carrier))
    theirs = trace.get_current_span(extracted).get_span_context().trace_id
    if theirs == trace.get_current_span().get_span_context().trace_id:
        yield
        return
    token = context.attach(extracted)
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """No spans for periodic housekeeping: a poll every few seconds is not a trace."""
    if _active is None:
        yield
        return
    with suppress_instrumentation():
        yield


class AttemptSpan:
    """Records an attempt's outcome on its client span: the status code, or the error's kind.

    Without a span it is its own no-op context manager: what an attempt costs when
    tracing is off.
    """

    def __init__(self, span: Span | None) -> None:
        self.span = span

    def __enter__(self) -> AttemptSpan:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def outcome(self, status_code: int | None, error: str | None) -> None:
        if self.span is None:
            return
        if status_code is not None:
            self.span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status_code)
        if error is not None:
            # The kind only ("HTTP 500", "connection error", "timeout after 10 s"): the
            # detail after the colon may quote an address or a URL with its query.
            kind = str(status_code) if status_code is not None else error.split(":", 1)[0]
            self.span.set_attribute(error_attributes.ERROR_TYPE, kind)
            self.span.set_status(Status(StatusCode.ERROR, kind))


NO_ATTEMPT_SPAN = AttemptSpan(None)


def without_query(url: str) -> str:
    """The URL without credentials, query or fragment: a webhook URL may carry a token."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def attempt_span(
    method: str, url: str, delivery_id: object, attempt: int
) -> contextlib.AbstractContextManager[AttemptSpan]:
    """The client span of one delivery attempt: method, URL without query or credentials,
    the delivery id and attempt number; never headers, secrets, signature or body."""
    tracer = active_tracer()
    if tracer is None:
        return NO_ATTEMPT_SPAN
    return _attempt_span(tracer, method, url, str(delivery_id), attempt)


@contextlib.contextmanager
def _attempt_span(
    tracer: trace.Tracer, method: str, url: str, delivery_id: str, attempt: int
) -> Iterator[AttemptSpan]:
    parts = urlsplit(url)
    attributes: dict[str, str | int] = {
        http_attributes.HTTP_REQUEST_METHOD: method,
        url_attributes.URL_FULL: without_query(url),
        server_attributes.SERVER_ADDRESS: parts.hostname or "",
        DELIVERY_ID: delivery_id,
        ATTEMPT: attempt,
    }
    with contextlib.suppress(ValueError):  # a bad port fails the attempt, not the span
        if parts.port:
            attributes[server_attributes.SERVER_PORT] = parts.port
    with tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield AttemptSpan(span)
