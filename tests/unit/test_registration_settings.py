"""services/registration/settings.py: PUBLIC_URL, where portal links lead."""

from __future__ import annotations

import pytest

from services.common.settings import ConfigError, Env
from services.registration.settings import RegistrationSettings


def test_public_url_defaults_and_loses_its_trailing_slash() -> None:
    assert RegistrationSettings.from_env(Env({})).public_url == "http://0.0.0.0:8081"
    given = Env({"PUBLIC_URL": " https://hooks.example.com/base/ "})
    assert RegistrationSettings.from_env(given).public_url == "https://hooks.example.com/base"


@pytest.mark.parametrize(
    "raw",
    [
        "hooks.example.com",
        "/console",
        "ftp://hooks.example.com",
        "https://hooks.example.com/?a=1",
        "https://hooks.example.com/#top",
        "https://hooks.example.com/#",
        "https://hooks.example.com:99999",
        "https://hooks example.com",
    ],
)
def test_public_url_refuses_what_a_link_cannot_start_with(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^PUBLIC_URL must be an absolute http"):
        RegistrationSettings.from_env(Env({"PUBLIC_URL": raw}))


def test_public_url_with_credentials_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL") as refused:
        RegistrationSettings.from_env(Env({"PUBLIC_URL": "https://ops:hunter2@hooks.example.com"}))
    assert "hunter2" not in str(refused.value)
