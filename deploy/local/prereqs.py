"""Check what a host run needs; start PostgreSQL and RabbitMQ from compose when Docker can.

Prints one line saying what to do when something is missing, and exits 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from services.common.database_url import database_hosts
from services.common.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL

REPO = Path(__file__).resolve().parents[2]
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/opt/homebrew/bin/nginx")


def answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, 2):
            return True
    except OSError:
        return False


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    return answers((parts.hostname or "127.0.0.1", parts.port or default_port))


def database_reachable(url: str) -> bool:
    """Any server of DATABASE_URL answers (with several, the others may be down: failover)."""
    try:
        hosts = database_hosts(url)
    except ValueError:
        return True  # not a reachability matter: migrate says what is wrong with it in one line
    return any(answers(address) for address in hosts)


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return probe.returncode == 0


def find_nginx() -> str | None:
    explicit = os.environ.get("NGINX_BIN")
    for candidate in (explicit,) if explicit else NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def unreachable_message(servers: list[str], services: list[str]) -> str:
    """One line: what is unreachable and the two ways to fix it, without Docker here."""
    one = len(servers) == 1
    them = "it" if one else "them"
    compose = f"docker compose up -d {' '.join(services)}"
    return (
        f"{' and '.join(servers)}: not reachable, and no Docker engine is available to start "
        f"{them}. Start {them} yourself (with Docker: `{compose}`), or set the "
        f"{'variable' if one else 'variables'} in brackets to "
        f"{'a running server' if one else 'running servers'}."
    )


def ensure_infrastructure() -> bool:
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    missing = [
        name
        for name, up in (
            ("postgres", database_reachable(database_url)),
            ("rabbitmq", reachable(amqp_url, 5672)),
        )
        if not up
    ]
    if not missing:
        return True
    if docker_available():
        print(f"starting {' and '.join(missing)} with docker compose ...", flush=True)
        started = subprocess.run(
            ["docker", "compose", "up", "-d", "--wait", *missing], cwd=REPO, check=False
        )
        return started.returncode == 0
    where = {
        "postgres": f"PostgreSQL at {urlsplit(database_url).netloc.split('@')[-1]} (DATABASE_URL)",
        "rabbitmq": f"RabbitMQ at {urlsplit(amqp_url).netloc.split('@')[-1]} (AMQP_URL)",
    }
    print(unreachable_message([where[name] for name in missing], missing), file=sys.stderr)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nginx", action="store_true", help="also require nginx (make run)")
    args = parser.parse_args()
    if args.nginx and find_nginx() is None:
        print(
            "nginx is not installed: `sudo apt-get install -y nginx` (Debian/Ubuntu) or "
            "`brew install nginx` (macOS), or set NGINX_BIN to its path.",
            file=sys.stderr,
        )
        return 1
    return 0 if ensure_infrastructure() else 1


if __name__ == "__main__":
    raise SystemExit(main())
