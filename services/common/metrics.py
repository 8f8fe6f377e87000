"""Metrics shared by every HTTP service; module-level so many apps can share them."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "webhook_http_requests_total",
    "HTTP requests handled, by service, method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "webhook_http_request_duration_seconds",
    "HTTP request handling time, by service, method, route template and status.",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
