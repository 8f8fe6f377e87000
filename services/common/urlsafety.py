"""Refuse webhook URLs that point at loopback, private, link-local or metadata addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAME_RESOLVE_TIMEOUT_SECONDS = 2.0


class UnsafeDestination(Exception):
    """The destination is an address webhooks may not be sent to."""


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def is_forbidden_address(address: IPAddress) -> bool:
    """True for anything but a public unicast address (metadata services are link-local)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def is_localhost_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def check_literal_host(host: str) -> bool:
    """Judge a host without DNS: raise if forbidden; True if judged (literal or localhost)."""
    if is_localhost_name(host):
        raise UnsafeDestination(f"host {host!r} is a loopback name")
    address = parse_ip(host)
    if address is None:
        return False
    if is_forbidden_address(address):
        raise UnsafeDestination(f"address {address} is not a public address")
    return True


async def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout
    )
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_addresses(host: str, addresses: list[IPAddress]) -> None:
    for address in addresses:
        if is_forbidden_address(address):
            raise UnsafeDestination(f"host {host!r} resolves to {address}, not a public address")


async def check_registration_host(host: str, port: int) -> None:
    """Registration-time check: a name that does not resolve in time is accepted."""
    if check_literal_host(host):
        return
    try:
        addresses = await resolve(host, port, NAME_RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, UnicodeError):
        return  # judged again at delivery time
    check_addresses(host, addresses)
