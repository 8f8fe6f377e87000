"""Shapes of the API-key routes (admin keys only): the key as listed, a new key, the requests."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.api.edge import refuse
from services.common.api.shapes import ApiTime, Shape, UserId
from services.common.api_keys import MAX_LIFETIME_SECONDS

from .pagination import API_KEY_CURSOR, DEFAULT_LIMIT, cursor_pattern
from .queries import Limit
from .validation import RequestBody, no_default

KEY_PATTERN = "^whk_[A-Za-z0-9_-]{43}$"


class ApiKey(Shape):
    """An API key as listings show it: never the key itself, nor its hash."""

    id: uuid.UUID = Field(description="Revoke it with DELETE /api_key/{api_key_id}.")
    user_id: int | None = Field(description="The user it acts for; null for an admin key.")
    admin: bool = Field(description="Acts for every user; may manage event types and API keys.")
    portal: bool = Field(
        description="A portal link's session (POST /portal/session): a user key that expires."
    )
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: ApiTime
    last_used_at: ApiTime | None = Field(
        description="Noted at most once a minute, so up to a minute behind; null: never used."
    )
    expires_at: ApiTime | None = Field(
        description="From then on the key is refused (401); null: it never expires."
    )


class NewApiKey(ApiKey):
    """A key just created: the only time the key itself is shown."""

    key: str = Field(
        pattern=KEY_PATTERN,
        description="Send as `Authorization: Bearer <key>`. Only its hash is stored: it "
        "cannot be shown again.",
    )


class ApiKeyCreate(RequestBody):
    """POST /api_key: a key for one user (`user_id`) or an admin key (`"admin": true`)."""

    model_config = ConfigDict(
        json_schema_extra={
            # One owner: an admin key has no user_id, any other key needs one. As if/then/else
            # (not oneOf), generators keep the body's model and its fields.
            "if": {"required": ["admin"], "properties": {"admin": {"const": True}}},
            "then": {"not": {"required": ["user_id"]}},
            "else": {"required": ["user_id"]},
            "examples": [{"user_id": 1, "expires_in_seconds": 2592000}],
        }
    )

    # Left out is None; null is refused (the document states no null).
    user_id: UserId = Field(  # type: ignore[assignment]
        None, description="The user the key acts for.", json_schema_extra=no_default
    )
    admin: bool = Field(
        False, strict=True, description="An admin key: it acts for every user (no user_id)."
    )
    expires_in_seconds: int = Field(  # type: ignore[assignment]
        None,
        strict=True,
        ge=1,
        le=MAX_LIFETIME_SECONDS,
        description="The key is refused (401) this many seconds from now; left out: never.",
        json_schema_extra=no_default,
    )

    @model_validator(mode="after")
    def one_owner(self) -> ApiKeyCreate:
        if self.admin and self.user_id is not None:
            raise refuse("an admin key acts for every user: give user_id or admin, not both")
        if not self.admin and self.user_id is None:
            raise refuse('give user_id (a key for that user) or "admin": true (for every user)')
        return self


class ApiKeyListQuery(BaseModel):
    limit: Limit = DEFAULT_LIMIT
    cursor: Annotated[str | None, Field(pattern=cursor_pattern(API_KEY_CURSOR))] = Field(
        None, description="Opaque: the `next_cursor` of the previous page."
    )
