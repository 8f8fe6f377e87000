"""`make run`'s pieces that need no servers: the runner's exit status, the start-up check's line."""

from __future__ import annotations

from deploy.local.prereqs import unreachable_message
from deploy.local.run import exit_status


def test_a_requested_stop_with_every_process_exiting_0_is_a_success() -> None:
    assert exit_status(130, [0, 0, 0, 0]) == 0  # Ctrl-C
    assert exit_status(143, [0, 0]) == 0  # SIGTERM


def test_a_crash_or_a_cut_drain_keeps_honchos_code() -> None:
    assert exit_status(130, [0, -9, 0]) == 130  # killed after honcho's 5 s
    assert exit_status(1, [1, 0]) == 1  # a process died on its own
    assert exit_status(None, []) == 1


def test_the_start_up_check_names_what_to_start_and_how() -> None:
    one = unreachable_message(["PostgreSQL at db:5432 (DATABASE_URL)"], ["postgres"])
    assert one == (
        "PostgreSQL at db:5432 (DATABASE_URL): not reachable, and no Docker engine is available "
        "to start it. Start it yourself (with Docker: `docker compose up -d postgres`), or set "
        "the variable in brackets to a running server."
    )
    both = unreachable_message(["PostgreSQL …", "RabbitMQ …"], ["postgres", "rabbitmq"])
    assert "start them. Start them yourself" in both
    assert "`docker compose up -d postgres rabbitmq`" in both
    assert "set the variables in brackets to running servers." in both
