"""What the OpenAPI document says about itself: its info object and how callers authenticate."""

from __future__ import annotations

from typing import Any

DESCRIPTION = """\
Self-hosted webhook delivery: register a URL, upload a file, and the URL receives a signed
(Standard Webhooks), retried notification.

Every JSON answer, success or error, is the envelope `{"message", "data", "error"}`; lists
add `next_cursor`. Timestamps are UTC, `YYYY-MM-DD HH:MM:SS`. Lists are newest first and
paged with `limit` (default 50, at most 200) and the opaque `cursor`.
"""
INFO: dict[str, Any] = {
    "title": "Webhooks",
    "version": "0.1.0",
    "description": DESCRIPTION,
    # Self-hosted: whoever runs the deployment answers for its API (SECURITY.md says how to
    # reach the project's maintainers about a vulnerability).
    "contact": {"name": "The team that runs this deployment"},
}
# Both schemes are the same header; `adminKey` is the one a route names when only an admin
# key may call it (OpenAPI scopes belong to OAuth 2 and OpenID Connect, not to bearer keys).
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "With AUTH_MODE=api_key every route but this document needs "
        "`Authorization: Bearer <API key>`; create a key with "
        "`python -m services.registration create-api-key --user-id N`. "
        "A user key acts for its one user; an admin key acts for every user. "
        "With AUTH_MODE=none (local runs) no key is needed.",
    },
    "adminKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin API key, sent as `Authorization: Bearer <API key>` like any "
        "key (`python -m services.registration create-api-key --admin`): it acts for every "
        "user. Routes that name this scheme need one: a user key (or a portal link) gets "
        "403, and so does every call with AUTH_MODE=none where the route manages keys or "
        "portal links.",
    },
}
