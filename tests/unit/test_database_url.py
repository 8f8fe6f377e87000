"""services/common/database_url.py: DATABASE_URL with one server or several (SPEC section 18)."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from asyncpg.connect_utils import _parse_connect_dsn_and_args

from deploy.local.prereqs import database_reachable
from services.common.database_url import (
    database_hosts,
    database_name,
    libpq_host_parameters,
    with_database,
)
from services.common.db import DATABASE_UNAVAILABLE, _reset_connection
from services.common.migrate import _yoyo_url
from services.common.migrate import main as migrate_main
from services.common.settings import CommonSettings, ConfigError, Env

PAIR = "postgresql://app:s3cret@db1:5432,db2:5433/webhooks?target_session_attrs=read-write"


def test_one_host_with_and_without_a_port() -> None:
    assert database_hosts("postgresql://postgres@127.0.0.1:5432/webhooks") == (("127.0.0.1", 5432),)
    assert database_hosts("postgres://db/webhooks") == (("db", 5432),)
    assert database_hosts("postgresql://[::1]:5433/webhooks") == (("::1", 5433),)


def test_several_hosts_in_order() -> None:
    assert database_hosts(PAIR) == (("db1", 5432), ("db2", 5433))
    primary = "postgresql://a,b:6000/x?target_session_attrs=primary"
    assert database_hosts(primary) == (("a", 5432), ("b", 6000))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://db/x", "postgresql/postgres URL"),
        ("postgresql:///webhooks", "with a host"),
        ("postgresql://db1:5432,/x?target_session_attrs=read-write", "host 2 of 2"),
        ("postgresql://db:port/x", "bad port"),
        ("postgresql://db:70000/x", "bad port"),
        ("postgresql://db1,db2/x", "target_session_attrs=read-write"),
        ("postgresql://db1,db2/x?target_session_attrs=any", "got 'any'"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        database_hosts(url)


def test_settings_accept_a_multi_host_url() -> None:
    read = CommonSettings.common_from_env(Env({"DATABASE_URL": PAIR}))
    assert read["database_url"] == PAIR


def test_settings_refuse_several_hosts_without_read_write_in_one_line_without_password() -> None:
    with pytest.raises(ConfigError) as caught:
        CommonSettings.common_from_env(Env({"DATABASE_URL": "postgresql://u:pw@h1,h2/x"}))
    message = str(caught.value)
    assert message.startswith("DATABASE_URL names 2 hosts")
    assert "pw" not in message and "\n" not in message


def test_asyncpg_reads_every_host_and_the_session_attribute() -> None:
    addrs, params = _parse_connect_dsn_and_args(
        dsn=PAIR,
        host=None,
        port=None,
        user=None,
        password=None,
        passfile=None,
        database=None,
        ssl=None,
        service=None,
        servicefile=None,
        direct_tls=None,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
    )
    assert addrs == [("db1", 5432), ("db2", 5433)]
    assert params.target_session_attrs.value == "read-write"
    assert (params.user, params.database) == ("app", "webhooks")


def test_database_swapped_keeps_hosts_and_options() -> None:
    swapped = with_database(PAIR, "postgres")
    assert swapped == PAIR.replace("/webhooks?", "/postgres?")
    assert database_name(PAIR) == "webhooks"


def test_yoyo_gets_the_hosts_as_libpq_parameters() -> None:
    url = _yoyo_url(PAIR)
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg"
    assert (parts.username, parts.password, parts.hostname) == ("app", "s3cret", None)
    query = parse_qs(parts.query)
    assert query == {
        "target_session_attrs": ["read-write"],
        "host": ["db1,db2"],
        "port": ["5432,5433"],
    }
    assert libpq_host_parameters(PAIR).startswith("postgresql://app:s3cret@/webhooks?")
    # One host: the URL as it was, for yoyo's driver.
    assert _yoyo_url("postgresql://p@h:1/x") == "postgresql+psycopg://p@h:1/x"


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ReadOnlySQLTransactionError("read-only"),
        asyncpg.TargetServerAttributeNotMatched("no writable host"),
        asyncpg.AdminShutdownError("shutting down"),
        asyncpg.ConnectionDoesNotExistError("gone"),
    ],
)
def test_failover_errors_are_outages(error: Exception) -> None:
    assert isinstance(error, DATABASE_UNAVAILABLE)


class ReportingConnection:
    """What _reset_connection reads: the settings the server reported, the transaction."""

    def __init__(self, **reported: str) -> None:
        self.reported = SimpleNamespace(**reported)

    def get_settings(self) -> SimpleNamespace:
        return self.reported

    def is_in_transaction(self) -> bool:
        return False


async def test_a_connection_to_a_read_only_server_is_not_given_back_to_the_pool() -> None:
    await _reset_connection(ReportingConnection(in_hot_standby="off"))  # type: ignore[arg-type]
    await _reset_connection(ReportingConnection())  # type: ignore[arg-type]
    for reported in ({"in_hot_standby": "on"}, {"default_transaction_read_only": "on"}):
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await _reset_connection(ReportingConnection(**reported))  # type: ignore[arg-type]


def test_prereqs_find_a_pair_reachable_when_one_server_answers() -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refuses
        up, down = listening.getsockname()[1], closed.getsockname()[1]
        pair = f"postgresql://p@127.0.0.1:{down},127.0.0.1:{up}/x?target_session_attrs=read-write"
        assert database_reachable(pair)
        assert not database_reachable(f"postgresql://p@127.0.0.1:{down}/x")


def test_migrate_refuses_several_hosts_without_read_write_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@127.0.0.1:1,127.0.0.1:2/x")
    assert migrate_main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("migrate: DATABASE_URL names 2 hosts") and err.count("\n") == 1
    assert "pw" not in err
