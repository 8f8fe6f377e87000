"""The gateway's rendered values come from the services' settings: defaults stated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.gateway import render
from deploy.gateway.render import MULTIPART_OVERHEAD_BYTES, GatewaySettings, template_values
from services.common.settings import ConfigError
from services.registration.settings import RegistrationSettings
from services.upload.settings import UploadSettings


def test_without_environment_the_values_are_the_settings_defaults() -> None:
    registration, upload, gateway = RegistrationSettings(), UploadSettings(), GatewaySettings()
    assert template_values({}) == {
        "GATEWAY_PORT": str(gateway.port),
        "REGISTRATION_UPSTREAM": f"127.0.0.1:{registration.port}",
        "UPLOAD_UPSTREAM": f"127.0.0.1:{upload.port}",
        "MAX_JSON_BYTES": str(registration.max_json_bytes),
        "MAX_UPLOAD_BODY_BYTES": str(upload.max_upload_bytes + MULTIPART_OVERHEAD_BYTES),
        "GATEWAY_RATE_PER_SECOND": str(gateway.rate_per_second),
        "GATEWAY_RATE_BURST": str(gateway.rate_burst),
    }


def test_a_default_changed_in_a_settings_class_reaches_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RegistrationSettings, "max_json_bytes", 4096)
    monkeypatch.setattr(UploadSettings, "port", 9183)
    values = template_values({})
    assert values["MAX_JSON_BYTES"] == "4096"
    assert values["UPLOAD_UPSTREAM"] == "127.0.0.1:9183"


def test_the_renderer_states_no_default_of_its_own() -> None:
    source = Path(render.__file__).read_text()
    for default in ("8082", "8083", "65536", "104857600"):
        assert default not in source, f"{default} is stated in render.py, not read from settings"


def test_the_environment_overrides_and_is_checked_like_the_services() -> None:
    values = template_values(
        {"MAX_UPLOAD_BYTES": "10", "REGISTRATION_PORT": "9000", "GATEWAY_RATE_BURST": "5"}
    )
    assert values["MAX_UPLOAD_BODY_BYTES"] == str(10 + MULTIPART_OVERHEAD_BYTES)
    assert values["REGISTRATION_UPSTREAM"] == "127.0.0.1:9000"
    assert values["GATEWAY_RATE_BURST"] == "5"
    with pytest.raises(ConfigError, match="MAX_JSON_BYTES"):
        template_values({"MAX_JSON_BYTES": "lots"})
    with pytest.raises(ConfigError, match="GATEWAY_PORT"):
        template_values({"GATEWAY_PORT": "0"})
