"""Metrics of the dispatcher."""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Delivery attempts by outcome: success, retry (failed, will retry) or failed (gave up).",
    ["outcome"],
)
# The children, looked up once rather than on every attempt.
SUCCEEDED = DELIVERIES.labels("success")
RETRYING = DELIVERIES.labels("retry")
GAVE_UP = DELIVERIES.labels("failed")
ATTEMPT_DURATION = Histogram(
    "webhook_delivery_attempt_duration_seconds",
    "Time of one delivery attempt, request to response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge("webhook_deliveries_in_flight", "Delivery attempts under way.")
END_TO_END = Histogram(
    "webhook_delivery_end_to_end_seconds",
    "Time from the event (upload) to its successful delivery.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400),
)
ENDPOINT_BUSY = Counter(
    "webhook_deliveries_deferred_total",
    "Deliveries parked for a moment because their endpoint had its limit in flight.",
)
RATE_LIMITED = Counter(
    "webhook_deliveries_rate_limited_total",
    "Deliveries parked until the start their endpoint's rate_limit_per_second gave them.",
)
RATE_STARTS_MISSED = Counter(
    "webhook_rate_limit_starts_missed_total",
    "Reserved starts under a rate_limit_per_second missed (the machine busy, a parked "
    "message back late) and reserved again.",
)
DISPATCH_WAIT = Histogram(
    "webhook_delivery_dispatch_seconds",
    "Time from a delivery message's arrival in the dispatcher to its request being sent "
    "(endpoint slot, claim, signing), for messages due on arrival or after a wait.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DEAD_LETTER_MESSAGES = Gauge(
    "webhook_dead_letter_messages",
    "Messages in the dead-letter queue (deliveries given up on), read every few seconds; "
    "bounded by DEAD_LETTER_MAX_LENGTH and DEAD_LETTER_MAX_AGE_SECONDS.",
)
