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


IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215 local-use NAT64 prefix: where it embeds the IPv4 address depends on the site's
# prefix length, so it is refused outright (it is not globally reachable anyway).
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to its destination, if any.

    IPv4-mapped (::ffff:a.b.c.d), the deprecated IPv4-compatible (::a.b.c.d), NAT64
    (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::) all reach the IPv4 host: judging the
    IPv6 form alone would let ::127.0.0.1 or 64:ff9b::10.0.0.1 through as "global".
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_WELL_KNOWN or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_forbidden_address(address: IPAddress) -> bool:
    """True for anything but a public unicast address (metadata services are link-local)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL_USE:
            return True
        address = embedded_ipv4(address) or address
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
