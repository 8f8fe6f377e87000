"""Operator commands: create, list and revoke API keys, re-encrypt signing secrets after a key
change."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from services.common import api_keys, webhooks
from services.common.api.shapes import MAX_USER_ID
from services.common.db import init_connection
from services.common.endpoint_auth import resealed
from services.common.secrets import SecretBox, SecretUnavailable
from services.common.timefmt import api_time

from .settings import RegistrationSettings

REENCRYPT_BATCH_SIZE = 500
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CommandFailed(Exception):
    """The command could not do what was asked; the message is its one line of output."""


async def create_api_key(
    conn: asyncpg.Connection, user_id: int | None, expires_in_seconds: int | None = None
) -> str:
    """A new key for the user (None: an admin key, for every user); only its hash is
    stored, so this is the one time it is seen."""
    key, _ = await api_keys.create_key(conn, user_id, expires_in_seconds)
    return key


def whose(row: asyncpg.Record) -> str:
    if row["admin"]:
        return "an admin key"
    return f"user {row['user_id']}" + (" (portal link)" if row["portal"] else "")


async def revoke_api_key(conn: asyncpg.Connection, key: str) -> str:
    """Revoke the key; whose it was. Every service refuses it once this returns: the
    NOTIFY is committed with the revocation (services/common/revocation.py)."""
    row = await api_keys.revoke_by_key(conn, key)
    if row is None:
        raise CommandFailed("no active API key matches the one given")
    return whose(row)


async def revoke_api_key_by_id(conn: asyncpg.Connection, key_id: uuid.UUID) -> str:
    """Revoke the key with this id (as list-api-keys shows it); whose it was."""
    row = await api_keys.revoke_by_id(conn, key_id)
    if row is None:
        raise CommandFailed(f"no active API key has the id {key_id} (see list-api-keys)")
    return whose(row)


def to_the_minute(value: datetime | None, never: str = "never") -> str:
    return never if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def key_table(rows: list[asyncpg.Record], now: datetime) -> str:
    """One line per key: never the key or its hash, only its first characters."""
    if not rows:
        return "no active API keys"
    lines = [("id", "prefix", "for", "created", "last used", "expires")]
    for row in rows:
        expires = to_the_minute(row["expires_at"])
        if row["expires_at"] is not None and row["expires_at"] <= now:
            expires += " (expired)"
        lines.append(
            (
                str(row["id"]),
                row["prefix"] + "...",
                "admin" if row["admin"] else whose(row),
                to_the_minute(row["created_at"]),
                to_the_minute(row["last_used_at"]),
                expires,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


async def reencrypt_secrets(conn: asyncpg.Connection, box: SecretBox) -> int:
    """Rewrite every stored signing secret, endpoint password, client secret and client
    certificate key with SECRETS_KEY's first key; how many webhooks."""
    if not box.enabled:
        raise CommandFailed("SECRETS_KEY is not set: there is no key to encrypt with")
    done = 0
    after = None
    while True:
        async with conn.transaction():
            rows = await webhooks.lock_secrets(conn, after, REENCRYPT_BATCH_SIZE)
            if not rows:
                return done
            try:
                updates = [
                    (
                        row["id"],
                        box.reencrypt(row["secret"]),
                        None
                        if row["previous_secret"] is None
                        else box.reencrypt(row["previous_secret"]),
                        *resealed(row["auth"], row["tls_client_certificate"], box),
                    )
                    for row in rows
                ]
            except SecretUnavailable as exc:
                raise CommandFailed(str(exc)) from None
            await webhooks.set_secrets(conn, updates)
        done += len(rows)
        after = rows[-1]["id"]


def positive_user_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw!r}") from None
    if not 0 < value <= MAX_USER_ID:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw!r}")
    return value


def duration(raw: str) -> int:
    """`90s`, `15m`, `12h` or `30d` as seconds."""
    found = re.fullmatch(r"([0-9]{1,9})([smhd])", raw.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"must be a whole number and a unit s, m, h or d (e.g. 90s, 15m, 12h, 30d), got {raw!r}"
        )
    seconds = int(found[1]) * DURATION_UNITS[found[2]]
    if not 0 < seconds <= api_keys.MAX_LIFETIME_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3650d, got {raw!r}")
    return seconds


def key_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a key's id as list-api-keys shows it (a UUID), got {raw!r}"
        ) from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m services.registration",
        description="Without a command: run the registration service.",
    )
    commands = root.add_subparsers(dest="command")
    create = commands.add_parser(
        "create-api-key", help="create an API key for a user, or an admin key for every user"
    )
    whose = create.add_mutually_exclusive_group(required=True)
    whose.add_argument("--user-id", type=positive_user_id)
    whose.add_argument(
        "--admin",
        action="store_true",
        help="a key that acts for every user and may manage event types and API keys",
    )
    create.add_argument(
        "--expires-in",
        type=duration,
        metavar="DURATION",
        help="the key stops working after this long: 90s, 15m, 12h, 30d (default: never)",
    )
    commands.add_parser(
        "list-api-keys",
        help="list the keys not revoked: id, whose, created, last used, expiry (never the key)",
    )
    revoke = commands.add_parser("revoke-api-key", help="revoke an API key, by itself or its id")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("key", nargs="?", help="the key itself")
    which.add_argument("--id", type=key_id, help="the key's id, as list-api-keys shows it")
    commands.add_parser(
        "reencrypt-secrets", help="re-encrypt every signing secret with SECRETS_KEY's first key"
    )
    return root


async def run_command(args: argparse.Namespace, settings: RegistrationSettings) -> str:
    """Run one command; its output (the last line is what a script wants)."""
    action: Callable[[asyncpg.Connection], Awaitable[str]]
    if args.command == "create-api-key":

        async def action(conn: asyncpg.Connection) -> str:
            key, row = await api_keys.create_key(
                conn, None if args.admin else args.user_id, args.expires_in
            )
            owner = "every user (admin)" if args.admin else f"user {args.user_id}"
            expiry = (
                "" if row["expires_at"] is None else f", expires {api_time(row['expires_at'])} UTC"
            )
            return (
                f"API key {row['id']} for {owner}{expiry} (shown only now; store it safely):\n{key}"
            )

    elif args.command == "list-api-keys":

        async def action(conn: asyncpg.Connection) -> str:
            rows = await api_keys.list_keys(conn)
            return key_table(rows, datetime.now(UTC))

    elif args.command == "revoke-api-key" and args.id is not None:

        async def action(conn: asyncpg.Connection) -> str:
            return f"revoked API key {args.id} of {await revoke_api_key_by_id(conn, args.id)}"

    elif args.command == "revoke-api-key":

        async def action(conn: asyncpg.Connection) -> str:
            owner = await revoke_api_key(conn, args.key)
            return f"revoked API key {api_keys.display_prefix(args.key)}... of {owner}"

    else:

        async def action(conn: asyncpg.Connection) -> str:
            await init_connection(conn)  # the endpoint secrets are in jsonb columns
            count = await reencrypt_secrets(conn, SecretBox(settings.secrets_keys))
            return f"re-encrypted the signing secrets of {count} webhooks with the first key"

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CommandFailed(f"cannot reach the database: {type(exc).__name__}") from None
    try:
        return await action(conn)
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        raise CommandFailed("the schema is missing or old: run `make migrate` first") from None
    finally:
        await conn.close()


def main_command(args: argparse.Namespace, settings: RegistrationSettings) -> int:
    try:
        print(asyncio.run(run_command(args, settings)))
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
