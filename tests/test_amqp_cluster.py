"""AMQP_URL with several brokers: parsing, connecting to the first that answers, failing over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest

from harness.processes import service_env, start_service, stop_process, wait_http_ok
from harness.procstack import via_proxy
from harness.proxy import TcpProxy
from harness.stack import free_port
from services.common.amqp_cluster import ClusterConnection, connect_cluster, parse_broker_urls
from services.common.settings import CommonSettings, ConfigError, Env, redact_url

REPO = Path(__file__).resolve().parent.parent


def dead_url(amqp_url: str) -> str:
    """The same account and vhost on a port where nothing listens."""
    return via_proxy(amqp_url, free_port())


def test_one_url_is_one_broker() -> None:
    (broker,) = parse_broker_urls("amqp://guest:guest@127.0.0.1:5672/")
    assert (broker.host, broker.port, broker.user) == ("127.0.0.1", 5672, "guest")


def test_several_urls_keep_their_order_and_ignore_spaces() -> None:
    brokers = parse_broker_urls(
        "amqp://u:p@rmq-0:5672/v, amqp://u:p@rmq-1:5673/v ,amqp://u:p@rmq-2/v"
    )
    assert [(b.host, b.port) for b in brokers] == [
        ("rmq-0", 5672),
        ("rmq-1", 5673),
        ("rmq-2", None),  # aiormq picks 5672 (or 5671 for amqps)
    ]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "got nothing"),
        ("http://127.0.0.1/", "value must be a full amqp/amqps URL"),
        ("amqp://u:p@a:5672/,b:5673", "item 2 of 2 must be a full amqp/amqps URL"),
        ("amqp://u:p@a/,", "item 2 of 2"),
        ("amqp://u:p@a/v,amqp://u:p@b/other", "share scheme, user, password, vhost"),
        ("amqp://u:p@a/,amqps://u:p@b/", "item 2 of 2 (amqps://u:***@b/)"),
        ("amqp://u:p@a/,amqp://x:p@b/", "must differ from the first only in host and port"),
    ],
)
def test_bad_lists_are_refused_with_one_line(raw: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_broker_urls(raw)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert ":p@" not in message, "a password leaked into the message"


def test_settings_name_the_variable_and_keep_the_list() -> None:
    listed = "amqp://guest:guest@n1:5672/,amqp://guest:guest@n2:5673/"
    settings = CommonSettings.common_from_env(Env({"AMQP_URL": listed}))
    assert settings["amqp_url"] == listed
    with pytest.raises(ConfigError, match=r"^AMQP_URL item 2 of 2 must be a full amqp"):
        CommonSettings.common_from_env(Env({"AMQP_URL": "amqp://g:s3cret@n1/,n2"}))


def test_redact_url_hides_every_password_of_a_list() -> None:
    listed = "amqp://guest:s3cret@n1:5672/,amqp://guest:s3cret@n2:5673/"
    assert redact_url(listed) == "amqp://guest:***@n1:5672/,amqp://guest:***@n2:5673/"


def test_a_service_stops_on_a_bad_list_with_one_line() -> None:
    env = {key: value for key, value in os.environ.items() if key != "AMQP_URL"}
    env["AMQP_URL"] = "amqp://guest:s3cret@127.0.0.1:5672/,127.0.0.1:5673"
    result = subprocess.run(
        [sys.executable, "-m", "services.dispatcher"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "AMQP_URL item 2 of 2" in lines[0]
    assert "s3cret" not in result.stderr


async def test_connect_skips_a_dead_broker(amqp_url: str) -> None:
    connection = await connect_cluster(f"{dead_url(amqp_url)},{amqp_url}", timeout=5)
    try:
        assert connection.current == 1
        channel = await connection.channel()
        await channel.declare_queue(exclusive=True)
    finally:
        await connection.close()


async def test_connect_raises_when_no_broker_answers(amqp_url: str) -> None:
    with pytest.raises(OSError):
        await connect_cluster(f"{dead_url(amqp_url)},{dead_url(amqp_url)}", timeout=5)


async def test_a_lost_broker_fails_over_to_the_next_and_consumers_come_back(
    amqp_url: str,
) -> None:
    """The first broker (a proxy to the real one) goes away; the second takes over."""
    real = urlsplit(amqp_url)
    proxy = await TcpProxy(real.hostname or "127.0.0.1", real.port or 5672).start()
    brokers = f"{via_proxy(amqp_url, proxy.port)},{amqp_url}"
    connection = await connect_cluster(brokers, timeout=5)
    try:
        assert isinstance(connection, ClusterConnection)
        assert connection.current == 0
        reconnected = asyncio.Event()
        connection.reconnect_callbacks.add(lambda *_: reconnected.set())
        channel = await connection.channel()
        queue = await channel.declare_queue("", exclusive=False, auto_delete=True)
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                await received.put(message.body)

        await queue.consume(on_message)
        proxy.cut()
        await asyncio.wait_for(reconnected.wait(), 30)
        assert connection.current == 1
        await channel.default_exchange.publish(aio_pika.Message(b"after"), queue.name)
        assert await asyncio.wait_for(received.get(), 10) == b"after"
    finally:
        await connection.close()
        await proxy.stop()


async def test_a_service_with_a_dead_broker_first_becomes_ready(
    database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = service_env(
        DATABASE_URL=database_url,
        AMQP_URL=f"{dead_url(amqp_url)},{amqp_url}",
        DISPATCHER_PORT=str(port),
        ALLOW_PRIVATE_URLS="true",
    )
    process = start_service("dispatcher", env, tmp_path / "dispatcher.log")
    try:
        await wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=60)
    finally:
        stop_process(process)
    log = (tmp_path / "dispatcher.log").read_text()
    assert "broker_unreachable" in log
    assert '"broker_connected"' in log
