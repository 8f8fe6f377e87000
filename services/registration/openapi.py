"""The OpenAPI 3.1 document of the whole public API, generated from the shapes and a route table.

Every request and response shape is a pydantic model (services/common/api/shapes.py for
those several services answer with, validation.py and views.py for this service's); the
table below only says which route takes and answers which. tests/test_openapi.py checks
that every served route is here, and drives schemathesis with this document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from services.common.api.json_values import JSON_VALUE
from services.common.api.shapes import (
    ORDERING_KEY_HELP,
    AcceptedEvent,
    Envelope,
    ErrorEnvelope,
    EventRequest,
    Page,
    SendTestEvent,
    SentTestEvent,
    Upload,
    UploadForm,
)
from services.common.auth import is_open

from . import api_key_shapes, console, delivery_stats, portal_shapes, previews, queries, views
from . import event_type_validation as event_type_shapes
from . import validation as request_shapes
from .openapi_errors import ERRORS, error_responses
from .openapi_info import INFO, SECURITY_SCHEMES

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"
# Where each (model, mode) is in the document: a {"$ref": ...}.
Refs = dict[tuple[Any, JsonSchemaMode], dict[str, Any]]
# Routes that take a user_id, which must be the API key's user.
USER_ID_PATHS = ("/webhook/register", "/webhook", "/event")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    response: type[BaseModel] | None
    errors: tuple[int, ...] = ()
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    media: Literal["application/json", "multipart/form-data"] = "application/json"
    # Takes an Idempotency-Key header.
    idempotent: bool = False
    # Takes an Ordering-Key header.
    ordered: bool = False
    # Only an admin API key may call it (a user key gets 403), e.g. event type writes.
    admin: bool = False


ROUTES = (
    Route("get", "/event_type", "listEventTypes", "List event types", "registration",
          Envelope[list[views.EventType]], (400, 503), "Archived types are listed too.",
          query=event_type_shapes.EventTypeQuery),
    Route("post", "/event_type", "createEventType", "Create an event type", "event types",
          Envelope[views.EventType], (400, 403, 409, 413, 415, 503),
          "Its name is unique (409) and is the `type` of its events on the wire. The schema, "
          "if any, is checked now (400 naming `schema`) and every payload is validated "
          "against it.", body=event_type_shapes.EventTypeCreate, status=201, admin=True),
    Route("get", "/event_type/{event_type_id}", "getEventType", "Get an event type",
          "event types", Envelope[views.EventType], (400, 404, 503),
          "Archived types too (`archived: true`); `schema` is null when it has none."),
    Route("patch", "/event_type/{event_type_id}", "updateEventType", "Change an event type",
          "event types", Envelope[views.EventType], (400, 403, 404, 413, 415, 503),
          "Any of description, schema (null removes it) and archived. An archived type takes "
          "no new events (409) and no new webhooks (409); its webhooks stay. The system's "
          "own types (`upload file`, `webhook.disabled`, `delivery.failed`) cannot be "
          "archived or given another schema, in any auth mode (403); their description can "
          "change.",
          body=event_type_shapes.EventTypePatch, admin=True),
    Route("post", "/event", "publishEvent", "Publish an event", "events",
          Envelope[AcceptedEvent], (400, 404, 409, 413, 415, 422, 503),
          "Answered once the event is durable; it is then fanned out to every webhook of "
          "that user registered for the type whose filter matches its payload (one delivery "
          "each). Unknown type 404; archived 409; a type the system publishes "
          "(`upload file`, `webhook.disabled`, `delivery.failed`) 403; a payload failing the "
          "type's schema 422 naming the JSON pointer. With an `Idempotency-Key`, a repeat "
          "within 24 h answers the first event again (`Idempotent-Replayed: true`), the "
          "same key with another type or payload is a 422.",
          body=EventRequest, status=202, idempotent=True),
    Route("get", "/event", "listEvents", "List a user's events, newest first", "events",
          Page[views.ListedEvent], (400, 503),
          "Each with its deliveries counted by status. Page with `limit` (at most 100) and "
          "`cursor`.", query=queries.EventListQuery),
    Route("get", "/event/{event_id}", "getEvent", "Get an event and its deliveries", "events",
          Envelope[views.Event], (400, 404, 503),
          "The event as accepted, and the delivery it fanned out to each webhook with its "
          "status now. Another user's event is 404 for a user key."),
    Route("post", "/webhook/register", "registerWebhook", "Register a webhook", "registration",
          Envelope[views.RegisteredWebhook], (400, 404, 409, 413, 415, 503),
          "Registration and configuration are written in one transaction. An archived event "
          "type takes no new webhooks (409). The answer is the only place the signing secret "
          "is shown (besides rotation). GET on this path is 405.",
          body=request_shapes.WebhookRegistration),
    Route("get", "/webhook", "listWebhooks", "List a user's webhooks, newest first", "webhooks",
          Page[views.Webhook], (400, 503),
          "Deleted webhooks are not listed. Page with `limit` and `cursor`.",
          query=queries.WebhookListQuery),
    Route("get", "/webhook/{webhook_id}", "getWebhook", "Get a webhook", "webhooks",
          Envelope[views.Webhook], (400, 404, 503),
          "Its settings, filter and state; never its secret (shown only at registration and "
          "rotation). A deleted webhook is 404."),
    Route("patch", "/webhook/{webhook_id}", "updateWebhook", "Change a webhook", "webhooks",
          Envelope[views.UpdatedWebhook], (400, 404, 413, 415, 503),
          "Any of url, custom_headers, custom_payload, disabled and signature_scheme; an empty "
          "object is a 400. A different signature_scheme rotates the key into that scheme "
          "(the answer's `secret`; the old key signs too for the grace period). "
          "Disabling sets `disabled_reason` to `disabled by user`; re-enabling clears it. "
          "Deliveries of a disabled webhook are `not_attempted` until a recover after "
          "re-enabling.", body=request_shapes.WebhookPatch),
    Route("delete", "/webhook/{webhook_id}", "deleteWebhook", "Delete a webhook", "webhooks",
          Envelope[views.Webhook], (400, 404, 503),
          "From now on the webhook and its deliveries answer 404 on every route and uploads to "
          "it are refused with 404; its pending deliveries are cancelled. The answer is the "
          "webhook as it was."),
    Route("get", "/webhook/{webhook_id}/deliveries", "listDeliveries",
          "List a webhook's deliveries, newest first", "deliveries",
          Page[views.Delivery], (400, 404, 503), "One per event sent to it; `status` "
          "narrows the list. Page with `limit` and `cursor`.",
          query=queries.DeliveryListQuery),
    Route("post", "/webhook/{webhook_id}/recover", "recoverWebhook",
          "Redeliver every failed or not attempted delivery since a time", "deliveries",
          Envelope[views.Recovering], (400, 404, 409, 413, 415, 503),
          "In the background, every delivery of this webhook whose status is `failed` or "
          "`not_attempted` and that was created at or after `since` gets a new attempt (as with "
          "redeliver); nothing else is sent again.",
          body=request_shapes.RecoverRequest, status=202),
    Route("post", "/webhook/{webhook_id}/test", "sendTestEvent",
          "Send a test event to this webhook only", "webhooks",
          Envelope[SentTestEvent], (400, 404, 409, 413, 415, 422, 503),
          "Recorded (`test: true`) and delivered like any event, to this webhook alone, "
          "whatever its filter; a disabled webhook is a 409.", body=SendTestEvent, status=202),
    Route("post", "/webhook/{webhook_id}/secret/rotate", "rotateSecret",
          "Rotate the signing secret", "webhooks",
          Envelope[views.SecretRotation], (400, 404, 503),
          "The new key is of the webhook's signature_scheme (ed25519: `secret` is the public "
          "key). The old one keeps signing (second signature) until `previous_secret_expires_at`; "
          "rotating again within that time drops the oldest, so a delivery never carries more "
          "than two signatures."),
    Route("get", "/delivery/{delivery_id}", "getDelivery", "Get a delivery and its attempts",
          "deliveries", Envelope[views.DeliveryWithAttempts], (400, 404, 503),
          "Its status and every attempt in order: status code, error and duration."),
    Route("post", "/delivery/{delivery_id}/redeliver", "redeliver", "Send a delivery again",
          "deliveries", Envelope[views.Delivery], (400, 404, 409, 503),
          "A new attempt of the same delivery (same `webhook-id`), whatever its status, with "
          "its retry schedule started afresh.", status=202),
    Route("post", "/upload_file/webhook_id/{webhook_id}", "uploadFile", "Upload a file",
          "uploads", Envelope[Upload], (400, 404, 413, 415, 422, 503),
          "The file is stored and the event recorded before the answer; the webhook is then "
          "delivered asynchronously. With an `Idempotency-Key`, a repeat within 24 h answers "
          "the first upload again. With an `Ordering-Key`, its delivery waits for the earlier "
          "ones of that key (see `ordering_key` on POST /event).", body=UploadForm,
          media="multipart/form-data", idempotent=True, ordered=True),
    Route("get", "/webhook/{webhook_id}/stats", "getWebhookStats",
          "Count a webhook's deliveries by outcome, per hour and in all", "deliveries",
          Envelope[delivery_stats.DeliveryStats], (400, 404, 503),
          "Deliveries created in the last `hours`, by their status now; `success_rate` is "
          "the share of those attempted that succeeded.", query=delivery_stats.StatsQuery),
    Route("get", "/webhook/{webhook_id}/sample_event", "getSampleEvent",
          "A test event for the webhook's type", "webhooks",
          Envelope[previews.SampleEvent], (400, 404, 503),
          "A body for `POST /event` that publishes an event of this webhook's type for its "
          "user, with a sample payload from the type's schema. Nothing is published here."),
    Route("get", "/delivery/{delivery_id}/body", "getDeliveryBody",
          "The body of a delivery's request", "deliveries",
          Envelope[previews.DeliveryBody], (400, 404, 503),
          "The JSON text the endpoint gets, byte for byte, to check a receiver's parsing."),
    Route("get", "/api_key", "listApiKeys", "List the API keys not revoked, newest first",
          "api keys", Page[api_key_shapes.ApiKey], (400, 503), "Expired keys too; never a "
          "key itself. Admin keys only; 403 with AUTH_MODE=none.",
          query=api_key_shapes.ApiKeyListQuery, admin=True),
    Route("post", "/api_key", "createApiKey", "Create an API key", "api keys",
          Envelope[api_key_shapes.NewApiKey], (400, 413, 415, 503),
          "The answer is the only place the key is shown. Admin keys only; 403 with "
          "AUTH_MODE=none.", body=api_key_shapes.ApiKeyCreate, status=201, admin=True),
    Route("delete", "/api_key/{api_key_id}", "revokeApiKey", "Revoke an API key", "api keys",
          Envelope[api_key_shapes.ApiKey], (400, 404, 503),
          "Every service refuses the key (401) within a second. Admin keys only; 403 with "
          "AUTH_MODE=none.", admin=True),
    Route("post", "/portal/session", "createPortalSession",
          "Create a portal link that signs a browser in as one user", "portal",
          Envelope[portal_shapes.PortalSession], (400, 413, 415, 503),
          "Send the user's browser to `url`: the console opens as that user, whose token acts "
          "as the user's key (never for event type writes, API keys or portal links) until "
          "`expires_at`. The answer is the only place the link is shown. Admin keys only; 403 "
          "with AUTH_MODE=none.", body=portal_shapes.PortalSessionCreate, status=201,
          admin=True),
    Route("delete", "/portal/session/{portal_session_id}", "revokePortalSession",
          "Revoke a portal link", "portal", Envelope[api_key_shapes.ApiKey], (400, 404, 503),
          "Every service refuses its token (401, saying the link was revoked) within a second. "
          "Only portal sessions: another key's id is 404. Admin keys only; 403 with "
          "AUTH_MODE=none.", admin=True),
    Route("get", "/auth_mode", "getAuthMode", "Whether API keys are required", "meta",
          Envelope[console.AuthMode], (503,),
          "Needs no key: the console asks it to know which sign-in to show."),
    Route("get", "/openapi.json", "openapiDocument", "This document", "meta", None,
          description="OpenAPI 3.1, generated from the service's own models; needs no key."),
    Route("get", "/docs", "docsPage", "This document as a web page", "meta", None,
          description="Swagger UI, served with its assets by the service; needs no key."),
    Route("get", "/console", "consolePage", "The web console", "meta", None,
          description="A page to manage webhooks and deliveries in a browser; it signs in "
          "with an API key or a portal link when AUTH_MODE=api_key."),
)  # fmt: skip

PATH_PARAMETERS = {
    "webhook_id": ("WebhookId", "The webhook's id (400 if not a UUID)."),
    "delivery_id": ("DeliveryId", "The delivery's id: the `webhook-id` header the endpoint got."),
    "event_type_id": ("EventTypeId", "The event type's id (400 if not a UUID)."),
    "event_id": ("EventId", "The event's id (400 if not a UUID)."),
    "api_key_id": ("ApiKeyId", "The API key's id, as GET /api_key lists it (400 if not a UUID)."),
    "portal_session_id": (
        "PortalSessionId",
        "The portal session's id, as POST /portal/session answered it.",
    ),
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "description": "1 to 255 printable ASCII characters.",
}
ORDERING_KEY = {
    "name": "Ordering-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": ORDERING_KEY_HELP,
}
META_RESPONSES = {
    "/openapi.json": ("OpenAPI 3.1", "application/json", {"type": "object"}),
    "/docs": ("HTML", "text/html", {"type": "string"}),
    "/console": ("HTML", "text/html", {"type": "string"}),
}
TAGS = [
    {
        "name": "registration",
        "description": "Find an event type and register a webhook for it: the upload "
        "flow's first steps.",
    },
    {"name": "webhooks", "description": "See, change and delete webhooks."},
    {"name": "deliveries", "description": "Inspect deliveries and replay them."},
    {"name": "uploads", "description": "Upload a file; its webhook is delivered."},
    {"name": "event types", "description": "The kinds of events, with optional schemas."},
    {"name": "events", "description": "Publish an event to every subscribed webhook."},
    {"name": "api keys", "description": "Manage API keys (admin keys only)."},
    {
        "name": "portal",
        "description": "Links that sign your users in to the console (admin keys only).",
    },
    {"name": "meta", "description": "This document, the web console, and the auth mode."},
]


def component_schemas(routes: tuple[Route, ...]) -> tuple[Refs, Schema]:
    """Every model's JSON schema under components, and where each route's model is."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        if route.response is not None:
            wanted.append((route.response, "serialization"))
    refs, defs = models_json_schema(wanted, ref_template=REF)
    schemas = dict(defs.get("$defs", {}))
    schemas["JsonValue"] = JSON_VALUE
    return {(model, mode): schema for (model, mode), schema in refs.items()}, schemas


def query_parameters(model: type[BaseModel]) -> list[Schema]:
    """A query model's fields as parameters; null, which a query string cannot say, left out."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    parameters: list[Schema] = []
    for name, field in schema["properties"].items():
        options = [s for s in field.get("anyOf", [field]) if s.get("type") != "null"]
        inner = dict(options[0])
        if "default" in field and field["default"] is not None:
            inner["default"] = field["default"]
        parameter: Schema = {"name": name, "in": "query", "required": name in required}
        parameter["schema"] = inner
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def json_content(media: str, schema: Schema) -> Schema:
    return {"content": {media: {"schema": schema}}}


def operation(route: Route, refs: Refs) -> Schema:
    op: Schema = {"tags": [route.tag], "operationId": route.operation_id, "summary": route.summary}
    if route.description:
        op["description"] = route.description
    parameters: list[Schema] = [
        {"$ref": f"#/components/parameters/{component}"}
        for name, (component, _) in PATH_PARAMETERS.items()
        if f"{{{name}}}" in route.path
    ]
    if route.query is not None:
        parameters += query_parameters(route.query)
    if route.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    if route.ordered:
        parameters.append(ORDERING_KEY)
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        schema = refs[(route.body, "validation")]
        op["requestBody"] = {"required": True, **json_content(route.media, schema)}
        extra = route.body.model_config.get("json_schema_extra")
        examples = extra.get("examples") if isinstance(extra, dict) else None
        if isinstance(examples, list) and examples:
            # The first example is sent as it is, so some examples reach past the 404.
            op["requestBody"]["content"][route.media]["example"] = examples[0]
    responses: Schema = {}
    if route.response is not None:
        schema = refs[(route.response, "serialization")]
        responses[str(route.status)] = {
            "description": route.summary,
            **json_content("application/json", schema),
        }
    else:
        description, media, schema = META_RESPONSES[route.path]
        responses["200"] = {"description": description, **json_content(media, schema)}
    security, auth_statuses = access_of(route)
    if security is not None:
        op["security"] = security
    for status in [*route.errors, *auth_statuses]:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    op["responses"] = responses
    return op


def access_of(route: Route) -> tuple[list[Schema] | None, list[int]]:
    """The route's own security requirement (None: the document's) and its auth statuses."""
    if is_open(route.path):
        return [], []
    forbidden = [401, 403, 429] if route.admin or route.path in USER_ID_PATHS else [401, 429]
    return ([{"adminKey": []}, {}] if route.admin else None), forbidden


def build_document(routes: tuple[Route, ...] = ROUTES) -> Schema:
    refs, schemas = component_schemas(routes)
    paths: Schema = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/", "description": "The gateway (port 8081 by default)."}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(),
            "parameters": {
                component: {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                    "description": description,
                }
                for name, (component, description) in PATH_PARAMETERS.items()
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
        # An API key, or nothing when the deployment runs with AUTH_MODE=none.
        "security": [{"apiKey": []}, {}],
    }


@functools.cache
def openapi_document() -> Schema:
    return build_document()
