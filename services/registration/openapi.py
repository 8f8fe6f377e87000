"""The OpenAPI 3.1 document of the whole public API, kept in code beside the routes.

tests/test_openapi.py checks that every route of the registration and upload services is
here (and nothing else), and drives schemathesis with this document through the gateway.
"""

from __future__ import annotations

from typing import Any

from .pagination import DEFAULT_LIMIT, MAX_LIMIT
from .validation import (
    DELIVERY_STATUSES,
    MAX_URL_LENGTH,
    MAX_USER_ID,
    RESERVED_HEADERS,
    RESERVED_PAYLOAD_KEYS,
)

Schema = dict[str, Any]

# The `upload file` event type, seeded by the first migration (the original design's id).
UPLOAD_FILE_EVENT_TYPE_ID = "21f8e1f7-4142-42f9-ac30-74961702b2eb"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def envelope_of(data: Schema, description: str = "") -> Schema:
    schema: Schema = {
        "type": "object",
        "required": ["message", "data", "error"],
        "properties": {
            "message": {"type": "string"},
            "data": data,
            "error": {"const": False},
        },
    }
    if description:
        schema["description"] = description
    return schema


def page_of(item: str) -> Schema:
    schema = envelope_of({"type": "array", "items": ref(item)})
    schema["required"].append("next_cursor")
    schema["properties"]["next_cursor"] = {
        "type": ["string", "null"],
        "description": "Pass as `cursor` to get the next page; null on the last page.",
    }
    return schema


def json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Schema]:
    """Error responses from components, by status."""
    names = {
        400: "BadRequest",
        404: "NotFound",
        409: "Conflict",
        413: "TooLarge",
        415: "UnsupportedMediaType",
        422: "Unprocessable",
        503: "Unavailable",
        401: "Unauthorized",
        403: "Forbidden",
        429: "TooManyRequests",
    }
    return {str(status): {"$ref": f"#/components/responses/{names[status]}"} for status in statuses}


def json_body(schema: Schema, example: Any, description: str = "") -> Schema:
    media: Schema = {"schema": schema, "example": example}
    body: Schema = {"required": True, "content": {"application/json": media}}
    if description:
        body["description"] = description
    return body


def param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


TIMESTAMP: Schema = {
    "type": "string",
    "pattern": TIMESTAMP_PATTERN,
    "description": "UTC, `YYYY-MM-DD HH:MM:SS`.",
    "examples": ["2026-11-28 09:30:00"],
}
UUID: Schema = {"type": "string", "format": "uuid"}

SCHEMAS: dict[str, Schema] = {
    "Timestamp": TIMESTAMP,
    "ErrorEnvelope": {
        "type": "object",
        "description": "Every error: `message` says which field and what was wrong.",
        "required": ["message", "data", "error"],
        "properties": {
            "message": {"type": "string"},
            "data": {"type": "object"},
            "error": {"const": True},
        },
    },
    "EventType": {
        "type": "object",
        "required": ["id", "name", "description"],
        "properties": {
            "id": UUID,
            "name": {"type": "string"},
            "description": {"type": "string"},
        },
    },
    "Url": {
        "type": "string",
        "maxLength": MAX_URL_LENGTH,
        "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$",
        "description": (
            "Absolute http or https URL without credentials. Unless ALLOW_PRIVATE_URLS is "
            "true, a host that is or resolves to a loopback, private, link-local or "
            "metadata address is refused."
        ),
        "examples": ["https://example.com/hooks/uploads"],
    },
    "CustomHeaders": {
        "type": "object",
        "description": (
            "Sent with every delivery. Names are RFC 9110 tokens and may not be "
            f"{', '.join(sorted(RESERVED_HEADERS))} or start with `webhook-` (any case); "
            "values may not contain CR, LF or NUL."
        ),
        "propertyNames": {"pattern": HEADER_NAME_PATTERN},
        "additionalProperties": {"type": "string", "pattern": "^[^\\r\\n\\x00]*$"},
        "examples": [{"Authorization": "Bearer 3f9c"}],
    },
    "CustomPayload": {
        "type": "object",
        "description": (
            "Merged into every delivery's JSON body; may not use the reserved keys "
            f"{', '.join(sorted(RESERVED_PAYLOAD_KEYS))}."
        ),
        "not": {"anyOf": [{"required": [key]} for key in sorted(RESERVED_PAYLOAD_KEYS)]},
        "examples": [{"key1": "value1"}],
    },
    "WebhookRegistration": {
        "type": "object",
        "required": ["event_type_id", "user_id", "url"],
        "additionalProperties": False,
        "properties": {
            "event_type_id": {
                **UUID,
                "description": "An id from GET /event_type.",
                "examples": [UPLOAD_FILE_EVENT_TYPE_ID],
            },
            "user_id": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_USER_ID,
                "description": (
                    "With AUTH_MODE=api_key it may be left out (the key's user) and must "
                    "otherwise be the key's user (403)."
                ),
            },
            "url": ref("Url"),
            "custom_headers": nullable(ref("CustomHeaders")),
            "custom_payload": nullable(ref("CustomPayload")),
        },
    },
    "RegisteredWebhook": {
        "type": "object",
        "required": [
            "id",
            "user_id",
            "url",
            "event_type_id",
            "custom_headers",
            "custom_payload",
            "secret",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": UUID,
            "user_id": {"type": "integer"},
            "url": {"type": "string"},
            "event_type_id": UUID,
            "custom_headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "custom_payload": {"type": "object"},
            "secret": {
                "type": "string",
                "pattern": "^whsec_[A-Za-z0-9+/]+=*$",
                "description": "The signing secret (Standard Webhooks); shown only here "
                "and on rotation.",
            },
            "created_at": ref("Timestamp"),
            "updated_at": ref("Timestamp"),
        },
    },
    "Webhook": {
        "type": "object",
        "description": "A webhook as management shows it (never with its secret).",
        "required": [
            "id",
            "user_id",
            "url",
            "event_type_id",
            "custom_headers",
            "custom_payload",
            "disabled",
            "disabled_reason",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": UUID,
            "user_id": {"type": "integer"},
            "url": {"type": "string"},
            "event_type_id": UUID,
            "custom_headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "custom_payload": {"type": "object"},
            "disabled": {
                "type": "boolean",
                "description": "A disabled webhook's uploads are accepted and their "
                "deliveries recorded as `not_attempted`.",
            },
            "disabled_reason": {
                "type": ["string", "null"],
                "description": "Why: `disabled by user`, `endpoint answered 410 Gone`, or "
                "continuous failures for DISABLE_AFTER_SECONDS.",
            },
            "created_at": ref("Timestamp"),
            "updated_at": ref("Timestamp"),
        },
    },
    "WebhookUpdate": {
        "type": "object",
        "description": "Any of these fields, validated as at registration; null clears "
        "custom_headers or custom_payload. `disabled: false` re-enables the webhook and "
        "clears `disabled_reason`.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "url": ref("Url"),
            "custom_headers": nullable(ref("CustomHeaders")),
            "custom_payload": nullable(ref("CustomPayload")),
            "disabled": {"type": "boolean"},
        },
    },
    "SecretRotation": {
        "type": "object",
        "required": ["id", "secret", "previous_secret_expires_at"],
        "properties": {
            "id": UUID,
            "secret": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+=*$"},
            "previous_secret_expires_at": {
                **TIMESTAMP,
                "description": "Until then deliveries carry two signatures, the new "
                "secret's first (SECRET_ROTATION_GRACE_SECONDS after the rotation).",
            },
        },
    },
    "RecoverRequest": {
        "type": "object",
        "required": ["since"],
        "additionalProperties": False,
        "properties": {
            "since": {
                "type": "string",
                "format": "date-time",
                "description": "ISO 8601; without an offset it is UTC.",
                "examples": ["2026-11-28T09:00:00Z"],
            }
        },
    },
    "Recovering": {
        "type": "object",
        "required": ["recovering"],
        "properties": {
            "recovering": {
                "type": "integer",
                "minimum": 0,
                "description": "How many deliveries are being redelivered in the background.",
            }
        },
    },
    "Delivery": {
        "type": "object",
        "description": "One event to one webhook; `id` is the `webhook-id` header the endpoint "
        "received, the same on every attempt.",
        "required": [
            "id",
            "webhook_id",
            "upload_id",
            "status",
            "attempt_count",
            "next_retry_at",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": UUID,
            "webhook_id": UUID,
            "upload_id": {"type": ["string", "null"], "format": "uuid"},
            "status": {"enum": list(DELIVERY_STATUSES)},
            "attempt_count": {"type": "integer", "minimum": 0},
            "next_retry_at": {"type": ["string", "null"], "pattern": TIMESTAMP_PATTERN},
            "created_at": ref("Timestamp"),
            "updated_at": ref("Timestamp"),
        },
    },
    "Attempt": {
        "type": "object",
        "required": [
            "attempt",
            "status_code",
            "error",
            "duration_ms",
            "response_body",
            "created_at",
        ],
        "properties": {
            "attempt": {"type": "integer", "minimum": 1},
            "status_code": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"]},
            "duration_ms": {"type": "integer", "minimum": 0},
            "response_body": {
                "type": ["string", "null"],
                "description": "The start of the endpoint's answer (truncated).",
            },
            "created_at": ref("Timestamp"),
        },
    },
    "DeliveryWithAttempts": {
        "allOf": [
            ref("Delivery"),
            {
                "type": "object",
                "required": ["attempts"],
                "properties": {
                    "attempts": {
                        "type": "array",
                        "items": ref("Attempt"),
                        "description": "In the order they were made.",
                    }
                },
            },
        ]
    },
    "Upload": {
        "type": "object",
        "required": ["upload_id", "webhook_id", "filename", "size", "sha256", "content_type"],
        "properties": {
            "upload_id": UUID,
            "webhook_id": UUID,
            "filename": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "content_type": {"type": "string"},
        },
    },
    "UploadForm": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "description": "The file; streamed to storage, at most MAX_UPLOAD_BYTES.",
            }
        },
    },
}


def error_response(description: str, retry_after: bool = False) -> Schema:
    response = json_response(description, ref("ErrorEnvelope"))
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "string"},
            }
        }
    return response


RESPONSES: dict[str, Schema] = {
    "BadRequest": error_response("Malformed input: the message names the field."),
    "NotFound": error_response("Unknown id (or deleted webhook)."),
    "Conflict": error_response("The webhook is disabled: re-enable it first."),
    "TooLarge": error_response("The body is too large."),
    "UnsupportedMediaType": error_response("Wrong Content-Type."),
    "Unprocessable": error_response(
        "The Idempotency-Key was already used on this webhook for a different file."
    ),
    "Unavailable": error_response("A dependency is down; retry later.", retry_after=True),
    "Unauthorized": error_response(
        "AUTH_MODE=api_key and no valid `Authorization: Bearer <API key>` was sent."
    ),
    "Forbidden": error_response("`user_id` is not the API key's user."),
    "TooManyRequests": error_response(
        "Over the request rate limit (per API key, else per client address).", retry_after=True
    ),
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "With AUTH_MODE=api_key every route but this document needs "
            "`Authorization: Bearer <API key>`; create a key with "
            "`python -m services.registration create-api-key --user-id N`. "
            "With AUTH_MODE=none (local runs) no key is needed."
        ),
    }
}
# Served without a key in every mode.
OPEN_PATHS = ("/openapi.json", "/docs")
# Routes that take a user_id, which must be the key's user.
USER_ID_PATHS = ("/webhook/register", "/webhook")

PARAMETERS: dict[str, Schema] = {
    "WebhookId": {
        "name": "webhook_id",
        "in": "path",
        "required": True,
        "schema": UUID,
        "description": "The webhook's id (400 if not a UUID).",
    },
    "DeliveryId": {
        "name": "delivery_id",
        "in": "path",
        "required": True,
        "schema": UUID,
        "description": "The delivery's id: the `webhook-id` header the endpoint received.",
    },
    "Limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "description": "Items per page.",
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Opaque: the `next_cursor` of the previous page.",
    },
}

TAGS = [
    {"name": "registration", "description": "The original design's routes."},
    {"name": "webhooks", "description": "See, change and delete webhooks."},
    {"name": "deliveries", "description": "Inspect deliveries and replay them."},
    {"name": "uploads", "description": "Upload a file; its webhook is delivered."},
    {"name": "meta", "description": "This document."},
]

PATHS: dict[str, Schema] = {
    "/event_type": {
        "get": {
            "tags": ["registration"],
            "operationId": "listEventTypes",
            "summary": "List event types",
            "parameters": [
                {
                    "name": "name",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Only the event type of this name, e.g. `upload file`.",
                }
            ],
            "responses": {
                "200": json_response(
                    "The event types.", envelope_of({"type": "array", "items": ref("EventType")})
                ),
                **errors(400, 503),
            },
        }
    },
    "/webhook/register": {
        "post": {
            "tags": ["registration"],
            "operationId": "registerWebhook",
            "summary": "Register a webhook",
            "description": "Registration and configuration are written in one transaction. "
            "The answer is the only place the signing secret is shown (besides rotation). "
            "GET on this path is 405.",
            "requestBody": json_body(
                ref("WebhookRegistration"),
                {
                    "event_type_id": UPLOAD_FILE_EVENT_TYPE_ID,
                    "user_id": 1,
                    "url": "https://example.com/hooks/uploads",
                    "custom_headers": {"Authorization": "Bearer 3f9c"},
                    "custom_payload": {"key1": "value1"},
                },
            ),
            "responses": {
                "200": json_response(
                    "Registered (message `Register Webhook Successfully!`).",
                    envelope_of(ref("RegisteredWebhook")),
                ),
                **errors(400, 404, 413, 415, 503),
            },
        }
    },
    "/webhook": {
        "get": {
            "tags": ["webhooks"],
            "operationId": "listWebhooks",
            "summary": "List a user's webhooks, newest first",
            "description": "Deleted webhooks are not listed. Page with `limit` and `cursor`.",
            "parameters": [
                {
                    "name": "user_id",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID},
                },
                param("Limit"),
                param("Cursor"),
            ],
            "responses": {
                "200": json_response("A page of webhooks.", page_of("Webhook")),
                **errors(400, 503),
            },
        }
    },
    "/webhook/{webhook_id}": {
        "parameters": [param("WebhookId")],
        "get": {
            "tags": ["webhooks"],
            "operationId": "getWebhook",
            "summary": "Get a webhook",
            "responses": {
                "200": json_response("The webhook.", envelope_of(ref("Webhook"))),
                **errors(400, 404, 503),
            },
        },
        "patch": {
            "tags": ["webhooks"],
            "operationId": "updateWebhook",
            "summary": "Change a webhook",
            "description": "Any of url, custom_headers, custom_payload and disabled; an empty "
            "object is a 400. Disabling sets `disabled_reason` to `disabled by user`; "
            "re-enabling clears it. Deliveries of a disabled webhook are `not_attempted` "
            "until a recover after re-enabling.",
            "requestBody": json_body(
                ref("WebhookUpdate"), {"url": "https://example.com/hooks/v2", "disabled": False}
            ),
            "responses": {
                "200": json_response("The updated webhook.", envelope_of(ref("Webhook"))),
                **errors(400, 404, 413, 415, 503),
            },
        },
        "delete": {
            "tags": ["webhooks"],
            "operationId": "deleteWebhook",
            "summary": "Delete a webhook",
            "description": "From now on the webhook and its deliveries answer 404 on every "
            "route and uploads to it are refused with 404; its pending deliveries are "
            "cancelled. The answer is the webhook as it was.",
            "responses": {
                "200": json_response("Deleted.", envelope_of(ref("Webhook"))),
                **errors(400, 404, 503),
            },
        },
    },
    "/webhook/{webhook_id}/deliveries": {
        "parameters": [param("WebhookId")],
        "get": {
            "tags": ["deliveries"],
            "operationId": "listDeliveries",
            "summary": "List a webhook's deliveries, newest first",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": list(DELIVERY_STATUSES)},
                    "description": "Only deliveries in this state.",
                },
                param("Limit"),
                param("Cursor"),
            ],
            "responses": {
                "200": json_response("A page of deliveries.", page_of("Delivery")),
                **errors(400, 404, 503),
            },
        },
    },
    "/webhook/{webhook_id}/recover": {
        "parameters": [param("WebhookId")],
        "post": {
            "tags": ["deliveries"],
            "operationId": "recoverWebhook",
            "summary": "Redeliver every failed or not attempted delivery since a time",
            "description": "In the background, every delivery of this webhook whose status is "
            "`failed` or `not_attempted` and that was created at or after `since` gets a new "
            "attempt (as with redeliver); nothing else is sent again.",
            "requestBody": json_body(ref("RecoverRequest"), {"since": "2026-11-28T09:00:00Z"}),
            "responses": {
                "202": json_response("Recovery started.", envelope_of(ref("Recovering"))),
                **errors(400, 404, 409, 413, 415, 503),
            },
        },
    },
    "/webhook/{webhook_id}/secret/rotate": {
        "parameters": [param("WebhookId")],
        "post": {
            "tags": ["webhooks"],
            "operationId": "rotateSecret",
            "summary": "Rotate the signing secret",
            "description": "The old secret keeps signing (second signature) until "
            "`previous_secret_expires_at`; rotating again within that time drops the "
            "oldest, so a delivery never carries more than two signatures.",
            "responses": {
                "200": json_response("The new secret.", envelope_of(ref("SecretRotation"))),
                **errors(400, 404, 503),
            },
        },
    },
    "/delivery/{delivery_id}": {
        "parameters": [param("DeliveryId")],
        "get": {
            "tags": ["deliveries"],
            "operationId": "getDelivery",
            "summary": "Get a delivery and its attempts",
            "responses": {
                "200": json_response(
                    "The delivery with its attempts.", envelope_of(ref("DeliveryWithAttempts"))
                ),
                **errors(400, 404, 503),
            },
        },
    },
    "/delivery/{delivery_id}/redeliver": {
        "parameters": [param("DeliveryId")],
        "post": {
            "tags": ["deliveries"],
            "operationId": "redeliver",
            "summary": "Send a delivery again",
            "description": "A new attempt of the same delivery (same `webhook-id`), whatever "
            "its status, with its retry schedule started afresh.",
            "responses": {
                "202": json_response("Redelivery requested.", envelope_of(ref("Delivery"))),
                **errors(400, 404, 409, 503),
            },
        },
    },
    "/upload_file/webhook_id/{webhook_id}": {
        "parameters": [param("WebhookId")],
        "post": {
            "tags": ["uploads"],
            "operationId": "uploadFile",
            "summary": "Upload a file",
            "description": "The file is stored and the event recorded before the answer; the "
            "webhook is then delivered asynchronously. With an `Idempotency-Key`, a repeat "
            "within 24 h answers the first upload again.",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": "1 to 255 printable ASCII characters.",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": ref("UploadForm")}},
            },
            "responses": {
                "200": json_response("Stored; delivery follows.", envelope_of(ref("Upload"))),
                **errors(400, 404, 413, 415, 422, 503),
            },
        },
    },
    "/openapi.json": {
        "get": {
            "tags": ["meta"],
            "operationId": "openapiDocument",
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/docs": {
        "get": {
            "tags": ["meta"],
            "operationId": "docsPage",
            "summary": "This document as a web page",
            "responses": {
                "200": {
                    "description": "HTML",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}

DESCRIPTION = """\
Self-hosted webhook delivery: register a URL, upload a file, and the URL receives a signed
(Standard Webhooks), retried notification.

Every JSON answer, success or error, is the envelope `{"message", "data", "error"}`; lists
add `next_cursor`. Timestamps are UTC, `YYYY-MM-DD HH:MM:SS`. Lists are newest first and
paged with `limit` (default 50, at most 200) and the opaque `cursor`.
"""


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Webhooks", "version": "0.1.0", "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "The gateway (port 8081 by default)."}],
        "tags": TAGS,
        "paths": secured(PATHS),
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
        # An API key, or nothing when the deployment runs with AUTH_MODE=none.
        "security": [{"apiKey": []}, {}],
    }


def secured(paths: dict[str, Schema]) -> dict[str, Schema]:
    """Every operation with its authentication answers; the document itself open."""
    result: dict[str, Schema] = {}
    for path, item in paths.items():
        result[path] = {}
        for method, operation in item.items():
            if method == "parameters":
                result[path][method] = operation
                continue
            if path in OPEN_PATHS:
                result[path][method] = {**operation, "security": []}
                continue
            extra = errors(401, 403, 429) if path in USER_ID_PATHS else errors(401, 429)
            result[path][method] = {**operation, "responses": {**operation["responses"], **extra}}
    return result
