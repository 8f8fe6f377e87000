"""services/common/urlsafety.py: which hosts and addresses may receive webhooks."""

from __future__ import annotations

import ipaddress

import pytest

from services.common.urlsafety import (
    UnsafeDestination,
    check_literal_host,
    check_registration_host,
    is_forbidden_address,
)

# Only public unicast addresses may receive webhooks; loopback names are judged without DNS.


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "ff02::1",
        # IPv6 forms that carry a private IPv4 address to its host.
        "::127.0.0.1",
        "::10.0.0.1",
        "::169.254.169.254",
        "64:ff9b::10.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "64:ff9b:1::a00:1",
    ],
)
def test_is_forbidden_address_refuses_non_public(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is True


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "64:ff9b::8.8.8.8", "2002:808:808::"],
)
def test_is_forbidden_address_allows_public(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "::1",
        "[::1]",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "[::127.0.0.1]",
        "[64:ff9b::10.0.0.1]",
        "localhost",
        "LOCALHOST",
        "localhost.",
        "api.localhost",
    ],
)
def test_check_literal_host_refuses_without_dns(host: str) -> None:
    with pytest.raises(UnsafeDestination):
        check_literal_host(host)


def test_check_literal_host_judges_only_literals() -> None:
    assert check_literal_host("8.8.8.8") is True
    assert check_literal_host("2606:4700::1111") is True
    assert check_literal_host("example.com") is False
    assert check_literal_host("localhost-like.example.com") is False


async def test_check_registration_host_accepts_unresolvable_names() -> None:
    """Judged again at delivery time."""
    await check_registration_host("no-such-host.invalid", 443)


@pytest.mark.parametrize("host", ["0x7f.1", "2130706433"])
async def test_check_registration_host_refuses_numeric_loopback_spellings(host: str) -> None:
    """Not IP literals to Python, but the resolver turns them into 127.0.0.1."""
    with pytest.raises(UnsafeDestination):
        await check_registration_host(host, 80)
