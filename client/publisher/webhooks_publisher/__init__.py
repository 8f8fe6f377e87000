"""Publish events to the self-hosted webhook service and manage its webhooks (async and sync).

The client is generated from the service's OpenAPI document (client/publisher/build_client.py):
`models` holds its request and answer shapes, `api` one module per operation.
"""

from .async_client import AsyncWebhooksClient
from .envelope import Page
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from .generated import api, models
from .generated.types import UNSET, File, Unset
from .sync_client import WebhooksClient

__all__ = [
    "UNSET",
    "ApiError",
    "AsyncWebhooksClient",
    "BadRequest",
    "Conflict",
    "File",
    "Forbidden",
    "NotFound",
    "Page",
    "RateLimited",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "Unset",
    "WebhooksClient",
    "api",
    "models",
]
