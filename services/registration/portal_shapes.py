"""Shapes of the portal-link routes (admin keys only): a new portal session, the request."""

from __future__ import annotations

import uuid

from pydantic import ConfigDict, Field

from services.common.api.shapes import ApiTime, Shape, UserId

from .validation import RequestBody

MIN_SECONDS = 60
MAX_SECONDS = 86400
DEFAULT_SECONDS = 3600
TOKEN_FRAGMENT = "/console#session="


class PortalSession(Shape):
    """A portal session just created: the only time its link (with its token) is shown."""

    id: uuid.UUID = Field(description="Revoke it with DELETE /portal/session/{portal_session_id}.")
    user_id: int = Field(description="The user the link signs in as.")
    url: str = Field(
        description="PUBLIC_URL + `/console#session=<token>`: send the user's browser there. "
        "The token acts as the user's API key until `expires_at`; only its hash is stored, "
        "so the link cannot be shown again.",
        json_schema_extra={"format": "uri"},
    )
    expires_at: ApiTime = Field(description="From then on the link is refused (401).")


class PortalSessionCreate(RequestBody):
    """POST /portal/session: a link that signs a browser in as `user_id` for a while."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": 1}]})

    user_id: UserId = Field(description="The user the link signs in as.")
    expires_in_seconds: int = Field(
        DEFAULT_SECONDS,
        strict=True,
        ge=MIN_SECONDS,
        le=MAX_SECONDS,
        description="The link is refused (401) this many seconds from now.",
    )
