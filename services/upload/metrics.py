"""Metrics of the upload service."""

from prometheus_client import Counter, Gauge

UPLOADS = Counter("webhook_uploads_total", "Uploads accepted.")
UPLOAD_BYTES = Counter("webhook_upload_bytes_total", "Bytes of accepted uploads.")
EVENTS_PUBLISHED = Counter(
    "webhook_events_published_total",
    "Events confirmed by the broker, by who published them.",
    ["publisher"],
)
OUTBOX_PENDING = Gauge("webhook_outbox_pending", "Events recorded but not yet confirmed.")
