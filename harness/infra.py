"""Isolated infrastructure for a test run: a database and a RabbitMQ vhost of its own."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from services.common.migrate import apply_migrations, ensure_database
from services.common.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL

BASE_DATABASE_URL = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
BASE_AMQP_URL = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def database_url_for(name: str) -> str:
    return urlsplit(BASE_DATABASE_URL)._replace(path=f"/{name}").geturl()


def create_database(name: str, migrate: bool = True) -> str:
    url = database_url_for(name)
    ensure_database(url)
    if migrate:
        apply_migrations(url)
    return url


def drop_database(name: str) -> None:
    admin = database_url_for("postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class VhostAdmin:
    """Creates and deletes vhosts with rabbitmqctl, or the management API when that is absent."""

    def __init__(self) -> None:
        parts = urlsplit(BASE_AMQP_URL)
        self.host = parts.hostname or "127.0.0.1"
        self.user = parts.username or "guest"
        self.password = parts.password or "guest"
        self.rabbitmqctl = shutil.which("rabbitmqctl") or (
            "/usr/sbin/rabbitmqctl" if os.path.exists("/usr/sbin/rabbitmqctl") else None
        )

    def _ctl(self, *args: str) -> None:
        assert self.rabbitmqctl is not None
        subprocess.run([self.rabbitmqctl, "-q", *args], check=True, capture_output=True)

    def _api(self, method: str, path: str, body: dict[str, str] | None = None) -> None:
        request = urllib.request.Request(
            f"http://{self.host}:15672/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "content-type": "application/json",
                "authorization": "Basic "
                + base64.b64encode(f"{self.user}:{self.password}".encode()).decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def create(self, vhost: str) -> None:
        if self.rabbitmqctl:
            self._ctl("add_vhost", vhost)
            self._ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")
        else:
            self._api("PUT", f"vhosts/{quote(vhost, safe='')}")
            self._api(
                "PUT",
                f"permissions/{quote(vhost, safe='')}/{quote(self.user, safe='')}",
                {"configure": ".*", "write": ".*", "read": ".*"},
            )

    def delete(self, vhost: str) -> None:
        try:
            if self.rabbitmqctl:
                self._ctl("delete_vhost", vhost)
            else:
                self._api("DELETE", f"vhosts/{quote(vhost, safe='')}")
        except (subprocess.CalledProcessError, urllib.error.URLError):
            pass


def amqp_url_for(vhost: str) -> str:
    parts = urlsplit(BASE_AMQP_URL)
    return parts._replace(path=f"/{quote(vhost, safe='')}").geturl()
