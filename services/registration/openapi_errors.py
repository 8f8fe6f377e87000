"""The error answers of the OpenAPI document: one response per status, each our envelope."""

from __future__ import annotations

from typing import Any

# The document's component for every error answer (openapi.py puts it there).
ERROR_ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}

FORBIDDEN_HELP = (
    "Not allowed: `user_id` is not the API key's user, the route needs an admin key (the "
    "API-key and portal-link routes also AUTH_MODE=api_key), or the event type is published "
    "by the system only."
)
CONFLICT_HELP = (
    "Conflicts with the current state: the webhook is disabled (re-enable it first), the "
    "event type is archived, or the name is taken."
)
UNPROCESSABLE_HELP = (
    "The Idempotency-Key was already used for a different file or event, or the payload "
    "fails its event type's schema (the message names where)."
)
ERRORS = {
    400: ("BadRequest", "Malformed input: the message names the field."),
    401: ("Unauthorized", "AUTH_MODE=api_key and no valid `Authorization: Bearer <API key>`."),
    403: ("Forbidden", FORBIDDEN_HELP),
    404: ("NotFound", "Unknown id (or deleted webhook)."),
    409: ("Conflict", CONFLICT_HELP),
    413: ("TooLarge", "The body is too large."),
    415: ("UnsupportedMediaType", "Wrong Content-Type."),
    422: ("Unprocessable", UNPROCESSABLE_HELP),
    429: ("TooManyRequests", "Over the request rate limit (per API key, else per address)."),
    503: ("Unavailable", "A dependency is down; retry later."),
}
RETRY_AFTER = {429, 503}


def error_responses() -> dict[str, Any]:
    """The document's `components.responses`: each status's envelope, by name."""
    responses = {}
    for status, (name, description) in ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ERROR_ENVELOPE}},
        }
        if status in RETRY_AFTER:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "string"},
                }
            }
        responses[name] = response
    return responses
