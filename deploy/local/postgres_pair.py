"""A throwaway PostgreSQL primary and synchronous streaming standby of the installed server.

Both servers have their own ports, data directories and unix socket directories under one
temporary directory in /tmp, so they never meet the machine's own server (port 5432, its
socket in /var/run/postgresql), which is never touched. initdb and pg_ctl refuse to run as
root: as root the servers run as the `postgres` user, which owns the directory. `close()`
stops both servers and removes the directory. The steps follow PITFALLS ("Extra
PostgreSQL servers").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

POSTGRES_USER = "postgres"
STANDBY_NAME = "standby1"
SYNC_TIMEOUT_SECONDS = 60.0


def postgres_bin() -> Path:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if installed:
        return installed[-1].parent
    found = shutil.which("pg_ctl")
    if found is None:
        raise RuntimeError("pg_ctl not found: install postgresql (apt-get install -y postgresql)")
    return Path(found).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    data: Path
    sockets: Path
    running: bool = False

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.name}.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"


class PostgresPair:
    """A primary with one synchronous standby (`running_pair()` starts one and removes it)."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self._as_root = os.geteuid() == 0
        # In /tmp whatever the caller's folder: the postgres user must reach it (pytest's
        # tmp_path is private to root).
        self.base = Path(tempfile.mkdtemp(prefix="webhooks-pg-pair-"))
        self.base.chmod(0o700)
        self._own(self.base)
        self.primary = self._server("primary")
        self.standby = self._server(STANDBY_NAME)

    def _server(self, name: str) -> Server:
        sockets = self.base / f"{name}-sockets"
        sockets.mkdir()
        self._own(sockets)
        return Server(name, free_port(), self.base / name, sockets)

    def _own(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, POSTGRES_USER, POSTGRES_USER)

    def database_url(self, database: str) -> str:
        """DATABASE_URL naming both servers, the services to use whichever accepts writes."""
        hosts = ",".join(f"127.0.0.1:{server.port}" for server in (self.primary, self.standby))
        return f"postgresql://{POSTGRES_USER}@{hosts}/{database}?target_session_attrs=read-write"

    def _run(self, program: str, *args: str, timeout: float = 120.0) -> str:
        result = subprocess.run(
            [str(self.bin / program), *args],
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            user=POSTGRES_USER if self._as_root else None,
            group=POSTGRES_USER if self._as_root else None,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed: {(result.stderr or result.stdout)[-800:]}"
            )
        return result.stdout

    def _append(self, path: Path, lines: list[str]) -> None:
        with path.open("a") as conf:
            conf.write("\n" + "\n".join(lines) + "\n")

    def _start(self, server: Server) -> None:
        self._run("pg_ctl", "-D", str(server.data), "-l", str(server.log), "-w", "start")
        server.running = True

    # -- starting ---------------------------------------------------------------------------

    def start(self) -> None:
        primary, standby = self.primary, self.standby
        self._run(
            "initdb", "-D", str(primary.data), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"
        )
        self._append(
            primary.data / "postgresql.conf",
            [
                f"port = {primary.port}",
                "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{primary.sockets}'",
                "wal_level = replica",
                "max_wal_senders = 5",
                "max_connections = 200",
                # A commit answers once the standby has it too: a 2xx survives the failover.
                f"synchronous_standby_names = '{STANDBY_NAME}'",
            ],
        )
        self._append(primary.data / "pg_hba.conf", ["host replication all 127.0.0.1/32 trust"])
        self._start(primary)
        self._run(
            "pg_basebackup",
            "-h", "127.0.0.1", "-p", str(primary.port), "-U", POSTGRES_USER,
            "-D", str(standby.data), "-R", "-X", "stream",
        )  # fmt: skip
        self._append(
            standby.data / "postgresql.conf",
            [
                f"port = {standby.port}",
                f"unix_socket_directories = '{standby.sockets}'",
                # Once promoted it runs alone: waiting for a standby of its own would hold
                # every commit (a real cluster's manager adds a new standby).
                "synchronous_standby_names = ''",
            ],
        )
        # Later lines win: the one pg_basebackup -R wrote, with the name the primary waits for.
        self._append(
            standby.data / "postgresql.auto.conf",
            [
                f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user={POSTGRES_USER} "
                f"application_name={STANDBY_NAME}'"
            ],
        )
        self._start(standby)
        self.wait_synchronous()

    def wait_synchronous(self) -> None:
        deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
        while True:
            with psycopg.connect(self.primary.url(), autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (STANDBY_NAME,),
                ).fetchone()
            if row is not None and row[0] == "sync":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{STANDBY_NAME} not synchronous after {SYNC_TIMEOUT_SECONDS} s")
            time.sleep(0.2)

    # -- failing over -----------------------------------------------------------------------

    def stop_primary(self) -> None:
        """Stop the primary as a crash would (`-m immediate`: no checkpoint, no goodbye)."""
        self._run("pg_ctl", "-D", str(self.primary.data), "-m", "immediate", "stop")
        self.primary.running = False

    def promote_standby(self) -> None:
        """Make the standby the primary, waiting until it accepts writes."""
        self._run("pg_ctl", "-D", str(self.standby.data), "promote", "-w")

    def close(self) -> None:
        """Stop both servers (those still running) and remove every file of the pair."""
        for server in (self.primary, self.standby):
            if (server.data / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(server.data), "-m", "immediate", "stop")
            server.running = False
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def running_pair() -> Iterator[PostgresPair]:
    """A started pair, stopped and removed on leaving, on failure too."""
    pair = PostgresPair()
    try:
        pair.start()
        yield pair
    finally:
        pair.close()
