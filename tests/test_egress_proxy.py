"""DELIVERY_PROXY_URL: deliveries leave through a real forward proxy (proxy.py), and the
dispatcher still refuses private destinations, judging the target before the proxy sees it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.forward_proxy import ForwardProxy
from harness.receiver import Receiver, Reply
from harness.stack import Stack, StackOptions


@pytest.fixture
async def forward_proxy(tmp_path: Path) -> AsyncIterator[ForwardProxy]:
    proxy = await ForwardProxy(tmp_path / "proxy.log").start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def closing_receiver() -> AsyncIterator[Receiver]:
    """Closes each connection after answering: proxy.py logs a request when its connection
    ends, and the dispatcher would otherwise keep it open for the next delivery."""
    server = await Receiver([Reply(headers={"Connection": "close"})]).start()
    yield server
    await server.stop()


@pytest.fixture
def stack_options(forward_proxy: ForwardProxy, request: pytest.FixtureRequest) -> StackOptions:
    """The dispatcher behind the proxy; `allow_private` as the test's parameter says."""
    return StackOptions(
        delivery_proxy_url=forward_proxy.url,
        dispatcher_allow_private=request.param,
        retry_schedule=(),
        delivery_timeout_seconds=5.0,
    )


@pytest.mark.parametrize("stack_options", [True], indirect=True)
async def test_deliveries_go_through_the_proxy(
    stack: Stack, closing_receiver: Receiver, forward_proxy: ForwardProxy
) -> None:
    receiver = closing_receiver
    webhook = await stack.register(receiver.url)
    uploaded = await stack.upload(webhook["id"])
    [received] = await receiver.wait_for(1)
    assert received.json()["data"]["upload_id"] == uploaded["upload_id"]
    port = receiver.url.split(":")[2].split("/")[0]
    line = await forward_proxy.wait_for_access(f"POST 127.0.0.1:{port}")
    assert "200" in line, line

    # https goes through a CONNECT tunnel (the local receiver speaks plain HTTP, so the TLS
    # handshake inside the tunnel fails: the attempt is recorded as failed).
    secure = await stack.register(receiver.url.replace("http://", "https://"))
    delivery = await stack.delivery_for_upload((await stack.upload(secure["id"]))["upload_id"])
    await stack.wait_for_status(delivery["id"], "failed")
    await forward_proxy.wait_for_access(f"CONNECT 127.0.0.1:{port}")
    assert len(receiver.received) == 1


@pytest.mark.parametrize("stack_options", [False], indirect=True)
async def test_private_destinations_are_refused_with_the_proxy_on(
    stack: Stack, receiver: Receiver, forward_proxy: ForwardProxy
) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    # The machine's own name resolves to one of its addresses: judged after DNS, here.
    own_name = socket.gethostname()
    own_addresses = {info[4][0] for info in socket.getaddrinfo(own_name, int(port))}
    assert all(not ipaddress.ip_address(a).is_global for a in own_addresses), own_addresses
    urls = [
        receiver.url,
        f"http://localhost:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://{own_name}:{port}/hook",
    ]
    for url in urls:
        webhook = await stack.register(url)  # registration allows private URLs in tests
        delivery = await stack.delivery_for_upload((await stack.upload(webhook["id"]))["upload_id"])
        await stack.wait_for_status(delivery["id"], "failed")
        error = await stack.pool.fetchval(
            "SELECT error FROM delivery_attempts WHERE delivery_id = $1", delivery["id"]
        )
        assert error.startswith("refused destination"), (url, error)
    assert receiver.received == []
    # The proxy (itself on a loopback address, which is the operator's choice) never saw them.
    assert not [line for line in forward_proxy.access_log() if port in line]
