"""Fixtures: a database and a RabbitMQ vhost per test run, and the running system per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.infra import (
    VhostAdmin,
    amqp_url_for,
    create_database,
    drop_database,
    unique_name,
)
from harness.receiver import Receiver
from harness.stack import Stack, StackOptions, running_stack
from services.common.broker import Broker


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = unique_name("webhooks_test")
    url = create_database(name)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    admin = VhostAdmin()
    vhost = unique_name("webhooks_test")
    admin.create(vhost)
    yield amqp_url_for(vhost)
    admin.delete(vhost)


@pytest.fixture
def stack_options() -> StackOptions:
    """Overridden by tests (or modules) that need other settings."""
    return StackOptions()


@pytest.fixture
async def stack(
    database_url: str, amqp_url: str, tmp_path: Path, stack_options: StackOptions
) -> AsyncIterator[Stack]:
    async with running_stack(database_url, amqp_url, tmp_path, stack_options) as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def broker(stack: Stack) -> AsyncIterator[Broker]:
    """A broker link to the stack's vhost, for tests that publish as a service would."""
    connection = Broker(stack.amqp_url)
    await connection.start()
    await connection.wait_ready(10)
    yield connection
    await connection.close()
