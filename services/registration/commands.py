"""Operator commands: create and revoke API keys, re-encrypt signing secrets after a key change."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from services.common import webhooks
from services.common.api.shapes import MAX_USER_ID
from services.common.auth import display_prefix, hash_api_key, new_api_key
from services.common.revocation import notify_revoked
from services.common.secrets import SecretBox, SecretUnavailable

from .settings import RegistrationSettings

REENCRYPT_BATCH_SIZE = 500


class CommandFailed(Exception):
    """The command could not do what was asked; the message is its one line of output."""


async def create_api_key(conn: asyncpg.Connection, user_id: int | None) -> str:
    """A new key for the user (None: an admin key, for every user); only its hash is
    stored, so this is the one time it is seen."""
    key = new_api_key()
    await conn.execute(
        "INSERT INTO api_keys (user_id, admin, key_hash, prefix) VALUES ($1, $2, $3, $4)",
        user_id,
        user_id is None,
        hash_api_key(key),
        display_prefix(key),
    )
    return key


async def revoke_api_key(conn: asyncpg.Connection, key: str) -> str:
    """Revoke the key; whose it was. Every service refuses it once this returns: the
    NOTIFY is committed with the revocation (services/common/revocation.py)."""
    key_hash = hash_api_key(key)
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL "
            "RETURNING user_id, admin",
            key_hash,
        )
        if row is None:
            raise CommandFailed("no active API key matches the one given")
        await notify_revoked(conn, key_hash)
    return "an admin key" if row["admin"] else f"user {row['user_id']}"


async def reencrypt_secrets(conn: asyncpg.Connection, box: SecretBox) -> int:
    """Rewrite every stored signing secret with SECRETS_KEY's first key; how many rows."""
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
        help="a key that acts for every user and may manage event types",
    )
    revoke = commands.add_parser("revoke-api-key", help="revoke an API key")
    revoke.add_argument("key")
    commands.add_parser(
        "reencrypt-secrets", help="re-encrypt every signing secret with SECRETS_KEY's first key"
    )
    return root


async def run_command(args: argparse.Namespace, settings: RegistrationSettings) -> str:
    """Run one command; its output (the last line is what a script wants)."""
    action: Callable[[asyncpg.Connection], Awaitable[str]]
    if args.command == "create-api-key":

        async def action(conn: asyncpg.Connection) -> str:
            key = await create_api_key(conn, None if args.admin else args.user_id)
            whose = "every user (admin)" if args.admin else f"user {args.user_id}"
            return f"API key for {whose} (shown only now; store it safely):\n{key}"

    elif args.command == "revoke-api-key":

        async def action(conn: asyncpg.Connection) -> str:
            whose = await revoke_api_key(conn, args.key)
            return f"revoked API key {display_prefix(args.key)}... of {whose}"

    else:

        async def action(conn: asyncpg.Connection) -> str:
            count = await reencrypt_secrets(conn, SecretBox(settings.secrets_keys))
            return f"re-encrypted the signing secrets of {count} webhooks with the first key"

    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CommandFailed(f"cannot reach the database: {type(exc).__name__}") from None
    try:
        return await action(conn)
    except asyncpg.UndefinedTableError:
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
