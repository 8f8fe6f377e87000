"""A throwaway RabbitMQ cluster of extra nodes of the installed rabbitmq-server, on this machine.

Each node has its own name (`wh<i>_<run>@localhost`), AMQP and distribution ports, data,
log and config files under one temporary directory, and the cluster has an Erlang cookie
of its own, so it can never talk to the machine's own node (`rabbit@localhost`, port 5672),
which is never touched. `close()` stops every node it started and removes the directory.
The steps follow the notes in PITFALLS ("Extra RabbitMQ nodes on one machine").
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
# Debian's rabbitmq-server drops to this user; the node's files must be its own.
RABBITMQ_USER = "rabbitmq"
MACHINE_NODE = "rabbit@localhost"
START_TIMEOUT_SECONDS = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    """A RabbitMQ CLI tool; the unwrapped one, so it runs as us with our cookie."""
    unwrapped = RABBITMQ_BIN / name
    if unwrapped.exists():
        return str(unwrapped)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install rabbitmq-server (apt-get install -y ...)")
    return found


@dataclass
class Node:
    name: str
    amqp_port: int
    dist_port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None
    running: bool = False

    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"


class LocalCluster:
    """Three (or `size`) nodes joined into one cluster; use as a context manager."""

    def __init__(self, size: int = 3, workdir: Path | None = None) -> None:
        self.run_id = secrets.token_hex(3)
        self.cookie = secrets.token_hex(16).upper()
        self.base = Path(tempfile.mkdtemp(prefix="webhooks-cluster-", dir=workdir))
        self.base.chmod(0o755)
        self.nodes = [
            Node(f"wh{i}_{self.run_id}@localhost", free_port(), free_port(), self.base / f"wh{i}")
            for i in range(1, size + 1)
        ]
        self._as_root = os.geteuid() == 0

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def amqp_urls(self) -> str:
        """AMQP_URL listing every node, first node first."""
        return ",".join(node.amqp_url() for node in self.nodes)

    # -- starting ---------------------------------------------------------------------------

    def _prepare(self, node: Node) -> dict[str, str]:
        for sub in ("mnesia", "log"):
            (node.home / sub).mkdir(parents=True, exist_ok=True)
        # Its own config: /etc/rabbitmq/rabbitmq.conf pins the listener to 5672.
        (node.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\nloopback_users = none\n"
        )
        (node.home / "enabled_plugins").write_text("[].\n")
        # An empty env file: /etc/rabbitmq/rabbitmq-env.conf names the machine's node.
        (node.home / "rabbitmq-env.conf").write_text("")
        cookie = node.home / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        if self._as_root:
            for path in [node.home, *node.home.rglob("*")]:
                shutil.chown(path, RABBITMQ_USER, RABBITMQ_USER)
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin"),
            "HOME": str(node.home),  # where Erlang reads the cookie
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(node.home / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_PID_FILE": str(node.home / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _launch(self, node: Node) -> None:
        env = self._prepare(node)
        log = (self.base / f"{node.name.split('@')[0]}.out").open("wb")
        with log:
            node.process = subprocess.Popen(
                [tool("rabbitmq-server")],
                cwd=node.home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=RABBITMQ_USER if self._as_root else None,
                group=RABBITMQ_USER if self._as_root else None,
            )
        node.running = True

    def ctl(
        self, node: Node, *args: str, program: str = "rabbitmqctl", timeout: float = 60.0
    ) -> str:
        if node.name == MACHINE_NODE:  # never, whatever a caller passes
            raise RuntimeError(f"refusing to act on the machine's own node {MACHINE_NODE}")
        result = subprocess.run(
            [tool(program), "-n", node.name, "--erlang-cookie", self.cookie, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "HOME": str(self.base), "LANG": "C.UTF-8"},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} -n {node.name} {' '.join(args)} failed: "
                f"{(result.stderr or result.stdout).strip()[-500:]}"
            )
        return result.stdout

    def _await_started(self, node: Node, deadline: float) -> None:
        while True:
            assert node.process is not None
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.name} exited at start; see {self.base}")
            try:
                self.ctl(node, "await_startup", "--timeout", "30", timeout=40)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def start(self) -> None:
        for node in self.nodes:
            self._launch(node)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        for node in self.nodes:
            self._await_started(node, deadline)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app", timeout=120)
        running = self.running_nodes(first)
        if sorted(running) != sorted(node.name for node in self.nodes):
            raise RuntimeError(f"cluster did not form: running nodes {running}")

    # -- asking -----------------------------------------------------------------------------

    def live_node(self) -> Node:
        for node in self.nodes:
            if node.running:
                return node
        raise RuntimeError("no node is running")

    def running_nodes(self, node: Node) -> list[str]:
        status: dict[str, Any] = json.loads(self.ctl(node, "cluster_status", "--formatter", "json"))
        return list(status["running_nodes"])

    def leader_of(self, queue: str) -> Node:
        """The node that leads the quorum queue `queue` (vhost /)."""
        rows: list[dict[str, Any]] = json.loads(
            self.ctl(self.live_node(), "list_queues", "name", "leader", "--formatter", "json")
        )
        for row in rows:
            if row["name"] == queue:
                return next(node for node in self.nodes if node.name == row["leader"])
        raise RuntimeError(f"queue {queue} not found")

    def members_of(self, queue: str) -> list[str]:
        rows: list[dict[str, Any]] = json.loads(
            self.ctl(self.live_node(), "list_queues", "name", "members", "--formatter", "json")
        )
        return next(list(row["members"]) for row in rows if row["name"] == queue)

    # -- stopping ---------------------------------------------------------------------------

    def stop_node(self, node: Node) -> None:
        """Stop one node gracefully (rabbitmqctl stop), waiting for its process to end."""
        self.ctl(node, "stop", timeout=120)
        node.running = False
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(60)

    def close(self) -> None:
        """Stop every node this cluster started (by name, then by PID) and remove its files."""
        for node in self.nodes:
            if node.process is None:
                continue
            if node.process.poll() is None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.ctl(node, "stop", timeout=60)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(30)
            if node.process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(10)
            node.running = False
        shutil.rmtree(self.base, ignore_errors=True)
