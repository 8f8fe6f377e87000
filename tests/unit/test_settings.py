"""services/common/settings.py: reading the environment, and redacting URLs for logs."""

from __future__ import annotations

import pytest

from services.common.settings import ConfigError, Env, redact_url

# A bad value is a ConfigError naming the variable; blank means the default.


def test_integer_reads_and_defaults() -> None:
    env = Env({"PORT": " 8080 ", "BLANK": ""})
    assert env.integer("PORT", 1) == 8080
    assert env.integer("BLANK", 7) == 7
    assert env.integer("MISSING", 9) == 9


@pytest.mark.parametrize("raw", ["notanumber", "1.5", "8o8o"])
def test_integer_refuses_non_integers_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=f"REGISTRATION_PORT must be an integer, got '{raw}'"):
        Env({"REGISTRATION_PORT": raw}).integer("REGISTRATION_PORT", 8082, 1, 65535)


@pytest.mark.parametrize("raw", ["0", "65536", "-5"])
def test_integer_refuses_out_of_range(raw: str) -> None:
    with pytest.raises(ConfigError, match="REGISTRATION_PORT must be at least 1 and at most 65535"):
        Env({"REGISTRATION_PORT": raw}).integer("REGISTRATION_PORT", 8082, 1, 65535)


def test_seconds_list_parses_and_defaults() -> None:
    assert Env({"RETRY_SCHEDULE": " 1 , 2.5,30 "}).seconds_list("RETRY_SCHEDULE", "5") == (
        1.0,
        2.5,
        30.0,
    )
    assert Env({}).seconds_list("RETRY_SCHEDULE", "5,300") == (5.0, 300.0)


def test_empty_retry_schedule_means_no_retries() -> None:
    assert Env({"RETRY_SCHEDULE": ""}).seconds_list("RETRY_SCHEDULE", "5,300") == ()


def test_seconds_list_names_the_bad_item() -> None:
    with pytest.raises(ConfigError, match=r"RETRY_SCHEDULE .*'x'"):
        Env({"RETRY_SCHEDULE": "1,2,x"}).seconds_list("RETRY_SCHEDULE", "5")


@pytest.mark.parametrize("raw", ["-1", "1,-0.5", "nan", "1,inf"])
def test_seconds_list_refuses_delays_that_are_not_finite_non_negative(raw: str) -> None:
    with pytest.raises(ConfigError, match="RETRY_SCHEDULE"):
        Env({"RETRY_SCHEDULE": raw}).seconds_list("RETRY_SCHEDULE", "5")


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan"])
def test_number_refuses_non_positive_or_non_numbers(raw: str) -> None:
    with pytest.raises(ConfigError, match="DELIVERY_TIMEOUT_SECONDS"):
        Env({"DELIVERY_TIMEOUT_SECONDS": raw}).number("DELIVERY_TIMEOUT_SECONDS", 10.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        (" TRUE ", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
    ],
)
def test_flag_reads_booleans(raw: str, expected: bool) -> None:
    assert Env({"ALLOW_PRIVATE_URLS": raw}).flag("ALLOW_PRIVATE_URLS", False) is expected


def test_flag_defaults_when_missing() -> None:
    assert Env({}).flag("ALLOW_PRIVATE_URLS", True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_flag_refuses_other_words(raw: str) -> None:
    with pytest.raises(ConfigError, match="ALLOW_PRIVATE_URLS must be true or false"):
        Env({"ALLOW_PRIVATE_URLS": raw}).flag("ALLOW_PRIVATE_URLS", False)


def test_url_refuses_other_schemes_without_leaking_the_password() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as caught:
        Env({"DATABASE_URL": "mysql://app:hunter2@db/x"}).url(
            "DATABASE_URL", "postgresql://h/db", ("postgresql", "postgres")
        )
    assert "hunter2" not in str(caught.value)


def test_choice_refuses_unknown_values() -> None:
    assert Env({"LOG_FORMAT": "CONSOLE"}).choice("LOG_FORMAT", "json", ("json", "console")) == (
        "console"
    )
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of json, console"):
        Env({"LOG_FORMAT": "xml"}).choice("LOG_FORMAT", "json", ("json", "console"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/webhooks", "postgresql://app:***@db:5432/webhooks"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("postgresql://app:p%40ss@db/webhooks", "postgresql://app:***@db/webhooks"),
        (
            "postgresql://postgres@127.0.0.1:5432/webhooks",
            "postgresql://postgres@127.0.0.1:5432/webhooks",
        ),
        ("amqp://127.0.0.1/", "amqp://127.0.0.1/"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected
