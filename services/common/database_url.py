"""DATABASE_URL: one PostgreSQL server, or several (libpq's multi-host form) of which the
services use the one that accepts writes (SPEC section 18).

`postgresql://user@h1:5432,h2:5433/webhooks?target_session_attrs=read-write`: asyncpg and
libpq (psycopg, so migrations too) try the hosts in order and keep the first that accepts
writes, on every new connection. After a failover the connections to the lost primary
break, the pools replace them, and the replacements land on the promoted server.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
# What a multi-host URL must ask for: without it asyncpg and libpq take the first host that
# answers, which after a failover may be the old primary come back as a read-only standby.
WRITABLE_SESSION_ATTRS = ("read-write", "primary")


def _host_and_port(item: str, where: str) -> tuple[str, int]:
    if item.startswith("["):  # an IPv6 literal, [::1] or [::1]:5433
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise ValueError(f"must name a host in {where}, got {item!r}")
    if not port:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"has a bad port in {where}: {item!r}")
    return host, int(port)


def database_hosts(url: str) -> tuple[tuple[str, int], ...]:
    """The (host, port) of each server the URL names, in order; ValueError (one line) if bad."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"must be a {'/'.join(SCHEMES)} URL with a host, got scheme {parts.scheme!r}"
        )
    items = parts.netloc.rpartition("@")[2].split(",")
    if items == [""]:
        raise ValueError(f"must be a {'/'.join(SCHEMES)} URL with a host, got none")
    hosts = tuple(
        _host_and_port(item, f"host {n} of {len(items)}" if len(items) > 1 else "the URL")
        for n, item in enumerate(items, 1)
    )
    if len(hosts) > 1:
        attrs = dict(parse_qsl(parts.query)).get("target_session_attrs", "")
        if attrs not in WRITABLE_SESSION_ATTRS:
            raise ValueError(
                f"names {len(hosts)} hosts, so it must end in ?target_session_attrs=read-write "
                f"(or primary) for the services to use the one that accepts writes, got "
                f"{attrs or 'none'!r}"
            )
    return hosts


def with_database(url: str, name: str) -> str:
    """The same servers and options, database `name`."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def libpq_host_parameters(url: str) -> str:
    """The URL with its hosts moved to libpq's `host=` and `port=` parameters (lists), for
    clients that read one host:port from the URL themselves (yoyo) and pass the query's
    parameters on to libpq, which takes the lists."""
    hosts = database_hosts(url)
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    query = [
        *parse_qsl(parts.query),
        ("host", ",".join(host for host, _ in hosts)),
        ("port", ",".join(str(port) for _, port in hosts)),
    ]
    netloc = f"{userinfo}@" if userinfo else ""
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
