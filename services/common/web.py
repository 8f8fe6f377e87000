"""The JSON envelope, typed API errors, the request middleware and health/metrics routes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import Counter, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

from .cache import MAX_CACHE_ENTRIES
from .db import DATABASE_UNAVAILABLE
from .metrics import HTTP_DURATION, HTTP_REQUESTS
from .tracing import annotate_span, server_span_middleware, tracing_ctx, tracing_requested

log = structlog.get_logger(__name__)

SERVICE_NAME = web.AppKey("service_name", str)
# What a handler adds to its request's one canonical log line (ids of what it made).
CANONICAL_FIELDS = web.RequestKey("canonical_fields", dict[str, Any])
READINESS_CHECKS = web.AppKey("readiness_checks", list[Callable[[], Awaitable[None]]])
REQUEST_ID_HEADER = "X-Request-ID"
# Above the gateway's own limits (16 KiB lines, 128 KiB of headers in all, however many),
# so that whatever nginx lets through is answered by our middleware rather than by
# aiohttp's plain-text 400.
HTTP_PARSER_LIMITS = {"max_line_size": 32768, "max_field_size": 32768, "max_headers": 32768}
# Probes and scrapes would drown the canonical request lines.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ApiError(Exception):
    """An error that the client caused or must know about, rendered as an envelope."""

    status = 500

    def __init_subclass__(cls, status: int | None = None, **kwargs: Any) -> None:
        # Most kinds differ only in their status, so each says it in one line:
        # `class NotFound(ApiError, status=404): ...`; without one, a subclass keeps its base's.
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError, status=400): ...


class NotFound(ApiError, status=404): ...


class Conflict(ApiError, status=409): ...


class PayloadTooLarge(ApiError, status=413): ...


class UnsupportedMediaType(ApiError, status=415): ...


class ServiceUnavailable(ApiError, status=503):
    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, {"Retry-After": str(retry_after)})


def annotate(request: web.Request, **fields: Any) -> None:
    """Add fields to this request's canonical `http_request` log line (and its span)."""
    request.setdefault(CANONICAL_FIELDS, {}).update(fields)
    annotate_span(fields)


def header_once(request: web.Request, name: str) -> str | None:
    """An optional header's value; None if absent, 400 if it was sent more than once."""
    values = request.headers.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} header must be sent once, got {len(values)}")
    return values[0] if values else None


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def envelope(
    data: Any,
    message: str = "Successfully !",
    *,
    status: int = 200,
    error: bool = False,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"message": message, "data": data, "error": error}
    if extra:
        body.update(extra)
    return web.Response(
        body=dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_envelope(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return envelope({}, message, status=status, error=True, headers=headers)


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx naming what is wrong with it."""
    content_type = request.headers.get("Content-Type", "")
    if content_type and request.content_type not in ("application/json", "text/plain"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.content_type!r}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    # read(n) returns what has arrived so far; a body may come in several pieces.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(max_bytes + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("request body must be a JSON object, got an empty body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _http_exception_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no route for {request.method} {request.path}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    if exc.status == 413:
        return "request body is too large"
    return exc.reason


# The two HTTP metrics' children by (service, method, route, status): labels() checks and
# converts its values and takes a lock on every call. Cleared when full, as caches here are.
_http_metrics: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}


def http_metrics(service: str, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    key = (service, method, route, status)
    children = _http_metrics.get(key)
    if children is None:
        if len(_http_metrics) >= MAX_CACHE_ENTRIES:
            _http_metrics.clear()
        labels = (service, method, route, str(status))
        children = (HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels))
        _http_metrics[key] = children
    return children


def _route_template(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id, render every error as an envelope, log one line per request."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_envelope(exc.status, exc.message, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            response = error_envelope(exc.status, _http_exception_message(exc, request), headers)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("dependency_unavailable", error=repr(exc))
            response = error_envelope(
                503, "a dependency is unavailable, retry later", {"Retry-After": "5"}
            )
        except TimeoutError as exc:
            log.warning("dependency_timeout", error=repr(exc))
            response = error_envelope(
                503, "a dependency timed out, retry later", {"Retry-After": "5"}
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled_error", method=request.method, path=request.path)
            response = error_envelope(500, "internal error")
        response.headers[REQUEST_ID_HEADER] = request_id
        route = _route_template(request)
        duration = time.perf_counter() - started
        requests, durations = http_metrics(
            request.app[SERVICE_NAME], request.method, route, response.status
        )
        requests.inc()
        durations.observe(duration)
        if request.path not in QUIET_PATHS:
            log.info(
                "http_request",
                method=request.method,
                route=route,
                path=request.path,
                status=response.status,
                duration_ms=round(duration * 1000, 2),
                **request.get(CANONICAL_FIELDS, {}),
            )
        return response
    finally:
        structlog.contextvars.unbind_contextvars("request_id")


async def healthz(_request: web.Request) -> web.Response:
    return envelope({"status": "ok"}, "alive")


async def readyz(request: web.Request) -> web.Response:
    failures: dict[str, str] = {}
    for check in request.app[READINESS_CHECKS]:
        name = getattr(check, "__name__", "check")
        try:
            await asyncio.wait_for(check(), timeout=2.0)
        except Exception as exc:
            failures[name] = repr(exc) or type(exc).__name__
    if failures:
        return envelope(failures, "not ready", status=503, error=True)
    return envelope({"status": "ready"}, "ready")


def base_app(service: str) -> web.Application:
    """An application with our middleware and the health, readiness and metrics routes."""
    middlewares: list[Middleware] = [request_middleware]
    if tracing_requested():
        middlewares.insert(0, server_span_middleware(QUIET_PATHS))
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    if tracing_requested():
        # First, so that it stops last and flushes the spans of everything before it.
        app.cleanup_ctx.append(tracing_ctx(service))
    app[SERVICE_NAME] = service
    app[READINESS_CHECKS] = []
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", make_aiohttp_handler())
    return app
