"""Webhooks: the only writer of the webhook_registrations, webhook_configurations and
webhook_event_types tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from .signing_keys import SignatureScheme

# webhook_configurations' endpoint authentication (SPEC §17), in this order in statements.
ENDPOINT_AUTH_COLUMNS = ("auth", "tls_client_certificate", "tls_ca")


class NewWebhook(Protocol):
    """A registration as the service validated it."""

    @property
    def user_id(self) -> int: ...
    @property
    def type_ids(self) -> list[uuid.UUID]: ...
    @property
    def url(self) -> str: ...
    @property
    def custom_headers(self) -> dict[str, str] | None: ...
    @property
    def custom_payload(self) -> dict[str, Any] | None: ...
    @property
    def filter(self) -> dict[str, Any] | None: ...
    @property
    def retry_schedule(self) -> list[int] | None: ...
    @property
    def timeout_seconds(self) -> int | None: ...
    @property
    def signature_scheme(self) -> SignatureScheme: ...
    @property
    def max_concurrency(self) -> int | None: ...
    @property
    def rate_limit_per_second(self) -> int | None: ...


@dataclass(frozen=True)
class WebhookUpdate:
    """What a PATCH changes; None means "leave as it is". `options` holds those of filter,
    retry_schedule, timeout_seconds, max_concurrency and rate_limit_per_second that were
    sent, where None means the default."""

    url: str | None = None
    # The whole list of event types (it replaces the webhook's), in order.
    event_type_ids: list[uuid.UUID] | None = None
    custom_headers: dict[str, str] | None = None
    custom_payload: dict[str, Any] | None = None
    disabled: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)
    signature_scheme: SignatureScheme | None = None
    # Those of ENDPOINT_AUTH_COLUMNS sent (sealed), where None means none.
    configuration: dict[str, Any] = field(default_factory=dict)


def subscribe_from(registration: str, type_ids: str) -> str:
    """SQL inserting the event types `type_ids` (SQL, uuid[], in order) of each webhook of
    `registration` (its `id` and `user_id`)."""
    return f"""
        INSERT INTO webhook_event_types (webhook_id, event_type_id, user_id, position)
        SELECT r.id, t.event_type_id, r.user_id, t.n - 1
        FROM {registration} r, unnest({type_ids}) WITH ORDINALITY AS t(event_type_id, n)
        ON CONFLICT (webhook_id, event_type_id) DO UPDATE SET position = excluded.position
    """


async def insert_webhook(
    pool: asyncpg.Pool,
    new: NewWebhook,
    secret: str,
    endpoint_auth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Registration, configuration and event types in one statement (so one transaction,
    one round trip); `event_type_id` is the first type. `endpoint_auth`: the stored auth,
    tls_client_certificate and tls_ca that were given, their secrets sealed
    (services/common/endpoint_auth.py)."""
    given = {name: None for name in ENDPOINT_AUTH_COLUMNS} | (endpoint_auth or {})
    registration = await pool.fetchrow(
        f"""
        WITH registration AS (
            INSERT INTO webhook_registrations
                (user_id, event_type_id, url, secret, filter, retry_schedule, timeout_seconds,
                 signature_scheme, max_concurrency, rate_limit_per_second)
            VALUES ($1, ($2::uuid[])[1], $3, $4, $7, $8, $9, $10, $11, $15)
            RETURNING id, user_id, event_type_id, url, filter, retry_schedule,
                      timeout_seconds, signature_scheme, max_concurrency, rate_limit_per_second,
                      created_at, updated_at
        ), configuration AS (
            INSERT INTO webhook_configurations
                (webhook_id, custom_headers, custom_payload, auth, tls_client_certificate, tls_ca)
            SELECT id, $5, $6, $12, $13, $14 FROM registration
        ), subscription AS ({subscribe_from("registration", "$2::uuid[]")})
        SELECT * FROM registration
        """,
        new.user_id,
        new.type_ids,
        new.url,
        secret,
        new.custom_headers,
        new.custom_payload,
        new.filter,
        new.retry_schedule,
        new.timeout_seconds,
        new.signature_scheme,
        new.max_concurrency,
        *given.values(),
        new.rate_limit_per_second,
    )
    return {
        **dict(registration),
        "event_type_ids": new.type_ids,
        "custom_headers": new.custom_headers,
        "custom_payload": new.custom_payload,
        **given,
    }


async def update_webhook(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, update: WebhookUpdate
) -> bool:
    """Registration, configuration and event types, in the caller's transaction; False if
    there is no such webhook (or it is deleted)."""
    found = await conn.fetchrow(
        """
        UPDATE webhook_registrations
        SET url = coalesce($2, url),
            event_type_id = coalesce(($14::uuid[])[1], event_type_id),
            disabled = coalesce($3, disabled),
            disabled_reason = CASE
                WHEN $3::boolean IS NULL THEN disabled_reason
                WHEN $3::boolean THEN 'disabled by user'
                ELSE NULL END,
            -- Re-enabling starts the endpoint's health afresh.
            failing_since = CASE
                WHEN $3::boolean = false AND disabled THEN NULL
                ELSE failing_since END,
            -- Sent (even as null, the default) or left as they are.
            filter = CASE WHEN $4 THEN $5::jsonb ELSE filter END,
            retry_schedule = CASE WHEN $6 THEN $7::integer[] ELSE retry_schedule END,
            timeout_seconds = CASE WHEN $8 THEN $9::integer ELSE timeout_seconds END,
            max_concurrency = CASE WHEN $10 THEN $11::integer ELSE max_concurrency END,
            rate_limit_per_second = CASE WHEN $12 THEN $13::integer
                                         ELSE rate_limit_per_second END,
            updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id, user_id
        """,
        webhook_id,
        update.url,
        update.disabled,
        "filter" in update.options,
        update.options.get("filter"),
        "retry_schedule" in update.options,
        update.options.get("retry_schedule"),
        "timeout_seconds" in update.options,
        update.options.get("timeout_seconds"),
        "max_concurrency" in update.options,
        update.options.get("max_concurrency"),
        "rate_limit_per_second" in update.options,
        update.options.get("rate_limit_per_second"),
        update.event_type_ids,
    )
    if found is None:
        return False
    if update.event_type_ids is not None:
        # A statement of its own: it starts after the row lock above, so that it sees the
        # list of a PATCH that committed meanwhile, and replaces all of it.
        await conn.execute(
            f"""
            WITH dropped AS (
                DELETE FROM webhook_event_types
                WHERE webhook_id = $1 AND event_type_id <> ALL ($3::uuid[])
            )
            {subscribe_from("(SELECT $1::uuid AS id, $2::bigint AS user_id)", "$3::uuid[]")}
            """,
            webhook_id,
            found["user_id"],
            update.event_type_ids,
        )
    configuration = update.configuration
    if update.custom_headers is not None or update.custom_payload is not None or configuration:
        await conn.execute(
            """
            UPDATE webhook_configurations
            SET custom_headers = coalesce($2, custom_headers),
                custom_payload = coalesce($3, custom_payload),
                auth = CASE WHEN $4 THEN $5::jsonb ELSE auth END,
                tls_client_certificate = CASE WHEN $6 THEN $7::jsonb
                                              ELSE tls_client_certificate END,
                tls_ca = CASE WHEN $8 THEN $9::text ELSE tls_ca END,
                updated_at = now()
            WHERE webhook_id = $1
            """,
            webhook_id,
            update.custom_headers,
            update.custom_payload,
            *[
                value
                for name in ENDPOINT_AUTH_COLUMNS
                for value in (name in configuration, configuration.get(name))
            ],
        )
    return True


async def mark_deleted(conn: asyncpg.Connection, webhook_id: uuid.UUID) -> None:
    """Soft delete, in the caller's transaction (which cancels its pending deliveries). Its
    event types go: the fan-out's index then holds live webhooks only."""
    await conn.execute(
        """
        WITH unsubscribed AS (DELETE FROM webhook_event_types WHERE webhook_id = $1)
        UPDATE webhook_registrations SET deleted_at = now(), updated_at = now() WHERE id = $1
        """,
        webhook_id,
    )


async def rotate_secret(
    pool: asyncpg.Pool,
    webhook_id: uuid.UUID,
    new_secret: str,
    grace_seconds: int,
    scheme: str | None = None,
) -> asyncpg.Record | None:
    """The current secret becomes the previous one for the grace period, replacing any older;
    with `scheme`, the webhook signs in that scheme from then on (the new secret's)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """
        UPDATE webhook_registrations
        SET previous_secret = secret,
            previous_secret_expires_at = now() + make_interval(secs => $3),
            secret = $2,
            signature_scheme = coalesce($4, signature_scheme),
            updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL
        RETURNING id, secret, signature_scheme, previous_secret_expires_at
        """,
        webhook_id,
        new_secret,
        float(grace_seconds),
        scheme,
    )
    return row


async def lock_secrets(
    conn: asyncpg.Connection, after: uuid.UUID | None, limit: int
) -> list[asyncpg.Record]:
    """The next `limit` webhooks' stored secrets by id (signing secrets, and the endpoint's
    auth and client certificate), locked until the caller's transaction rewrites them
    (`set_secrets`)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT w.id, w.secret, w.previous_secret, c.auth, c.tls_client_certificate
        FROM webhook_registrations w JOIN webhook_configurations c ON c.webhook_id = w.id
        WHERE $1::uuid IS NULL OR w.id > $1
        ORDER BY w.id LIMIT $2
        FOR UPDATE
        """,
        after,
        limit,
    )
    return rows


async def set_secrets(
    conn: asyncpg.Connection,
    secrets: list[tuple[uuid.UUID, str, str | None, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """Store each (id, secret, previous_secret, auth, tls_client_certificate) as it is given
    (re-encrypted)."""
    await conn.executemany(
        """
        WITH registration AS (
            UPDATE webhook_registrations SET secret = $2, previous_secret = $3 WHERE id = $1
        )
        UPDATE webhook_configurations SET auth = $4, tls_client_certificate = $5
        WHERE webhook_id = $1
        """,
        secrets,
    )


# --- fragments of other writers' statements (one statement, one round trip) ----------------------


def disable_from(webhook_id: str, reason: str, name: str = "disabled") -> str:
    """A CTE for a statement's WITH list: `name` disables the webhook whose id is the SQL
    `webhook_id`, with the SQL text `reason`, if it is enabled, returning its `id` (no row:
    it was disabled already, or does not exist)."""
    return f"""
        {name} AS (
            UPDATE webhook_registrations
            SET disabled = true, disabled_reason = {reason}, updated_at = now()
            WHERE id = {webhook_id} AND NOT disabled
            RETURNING id
        )
    """


def record_health_from(attempts: str, name: str = "health") -> str:
    """A CTE for a statement's WITH list: `name` records each endpoint's health from the
    rows of `attempts` (webhook_id, error): an endpoint starts failing continuously when
    all of its attempts there failed, and is healthy again after any success."""
    return f"""
        {name} AS (
            UPDATE webhook_registrations w
            SET failing_since = CASE WHEN h.failed THEN now() END
            FROM (SELECT webhook_id, bool_and(error IS NOT NULL) AS failed
                  FROM {attempts} GROUP BY webhook_id) h
            WHERE w.id = h.webhook_id AND (w.failing_since IS NULL) = h.failed
        )
    """
