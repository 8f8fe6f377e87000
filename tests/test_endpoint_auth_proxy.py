"""Endpoint authentication behind DELIVERY_PROXY_URL (SPEC §17): the client certificate is
presented end to end through the proxy's CONNECT tunnel, and the OAuth2 token request goes
through the proxy too."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.forward_proxy import ForwardProxy
from harness.receiver import Reply
from harness.stack import Stack, StackOptions
from tests.test_egress_proxy import forward_proxy
from tests.test_endpoint_auth import (
    TlsReceiver,
    TokenServer,
    deliver,
    issued,
    oauth2,
    token_server,
)
from tests.test_security import OLD_SECRETS_KEY

__all__ = ["forward_proxy", "token_server"]  # fixtures, shared with their own modules


@pytest.fixture
def stack_options(forward_proxy: ForwardProxy) -> StackOptions:
    return StackOptions(
        delivery_proxy_url=forward_proxy.url,
        secrets_keys=(OLD_SECRETS_KEY,),
        retry_schedule=(),
    )


async def test_mutual_tls_and_oauth2_go_through_the_proxy(
    stack: Stack, forward_proxy: ForwardProxy, token_server: TokenServer, tmp_path: Path
) -> None:
    server_ca_pem, _, server_ca_name, server_ca_key = issued("server CA", None, ca=True)
    client_ca_pem, _, client_ca_name, client_ca_key = issued("client CA", None, ca=True)
    receiver = await TlsReceiver((server_ca_name, server_ca_key), client_ca_pem, tmp_path).start()
    token_server.close_connections = True

    def respond(number: int) -> Reply:
        """Only a token the server issued; the connection closed after each answer, so that
        the proxy logs the tunnel."""
        headers = {k.lower(): v for k, v in receiver.received[number].headers.items()}
        token = headers.get("authorization", "").removeprefix("Bearer ")
        return Reply(200 if token in token_server.valid else 401, {"Connection": "close"})

    receiver.respond = respond
    try:
        # Without a client certificate the receiver refuses the handshake in the tunnel.
        plain = await stack.register(receiver.url, tls_ca=server_ca_pem, auth=oauth2(token_server))
        failed = await stack.wait_for_status((await deliver(stack, plain["id"]))["id"], "failed")
        assert failed["last_error"].startswith("connection error"), failed["last_error"]
        assert receiver.received == []

        certificate, key, _, _ = issued("hooks client", (client_ca_name, client_ca_key))
        webhook = await stack.register(
            receiver.url,
            tls_ca=server_ca_pem,
            tls_client_certificate={"certificate": certificate, "private_key": key},
            auth=oauth2(token_server),
        )
        delivery = await deliver(stack, webhook["id"])
        await stack.wait_for_status(delivery["id"], "succeeded")
        [received] = receiver.received
        assert received.json()["data"]["upload_id"] == str(delivery["upload_id"])
        authorization = {k.lower(): v for k, v in received.headers.items()}["authorization"]
        assert authorization.removeprefix("Bearer ") in token_server.valid
    finally:
        await receiver.stop()

    # The proxy saw the tunnels to the receiver (TLS inside them is end to end) and forwarded
    # every token request: none went round it.
    await forward_proxy.wait_for_access(f"CONNECT 127.0.0.1:{receiver.port}")
    assert len(token_server.requests) == 2  # one per webhook
    await forward_proxy.wait_for_accesses(f"POST 127.0.0.1:{token_server.port}", 2)
