"""The gateway's rendered values come from the services' settings: defaults stated once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.gateway import render
from deploy.gateway.render import (
    MULTIPART_OVERHEAD_BYTES,
    UPSTREAM_GROUPS,
    GatewaySettings,
    template_values,
    upstream_groups,
)
from deploy.local.scale import MAX_REPLICAS, PORT_STRIDE, parse_scale, replica_ports
from services.common.settings import ConfigError
from services.registration.settings import RegistrationSettings
from services.upload.settings import UploadSettings


def test_without_environment_the_values_are_the_settings_defaults() -> None:
    registration, upload, gateway = RegistrationSettings(), UploadSettings(), GatewaySettings()
    assert template_values({}) == {
        "GATEWAY_PORT": str(gateway.port),
        "SERVICE_DISCOVERY": upstream_groups(
            {
                "registration": [f"127.0.0.1:{registration.port}"],
                "upload": [f"127.0.0.1:{upload.port}"],
            }
        ),
        "REGISTRATION_BACKEND": "registration_service",
        "UPLOAD_BACKEND": "upload_service",
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
    assert "server 127.0.0.1:9183 " in values["SERVICE_DISCOVERY"]


def test_the_renderer_states_no_default_of_its_own() -> None:
    source = Path(render.__file__).read_text()
    for default in ("8082", "8083", "65536", "104857600"):
        assert default not in source, f"{default} is stated in render.py, not read from settings"


def test_the_environment_overrides_and_is_checked_like_the_services() -> None:
    values = template_values(
        {"MAX_UPLOAD_BYTES": "10", "REGISTRATION_PORT": "9000", "GATEWAY_RATE_BURST": "5"}
    )
    assert values["MAX_UPLOAD_BODY_BYTES"] == str(10 + MULTIPART_OVERHEAD_BYTES)
    assert "server 127.0.0.1:9000 " in values["SERVICE_DISCOVERY"]
    assert values["GATEWAY_RATE_BURST"] == "5"
    with pytest.raises(ConfigError, match="MAX_JSON_BYTES"):
        template_values({"MAX_JSON_BYTES": "lots"})
    with pytest.raises(ConfigError, match="GATEWAY_PORT"):
        template_values({"GATEWAY_PORT": "0"})


def upstream_servers(config: str) -> dict[str, list[str]]:
    """Each upstream group's server addresses, in order."""
    groups = re.findall(r"upstream (\w+) \{(.*?)\}", config, re.S)
    return {name: re.findall(r"server (\S+)", body) for name, body in groups}


def test_scale_puts_every_replica_in_its_services_upstream_group() -> None:
    values = template_values({"SCALE": "dispatcher=3 upload=2 registration=3"})
    assert upstream_servers(values["SERVICE_DISCOVERY"]) == {
        UPSTREAM_GROUPS["registration"]: ["127.0.0.1:8082", "127.0.0.1:8085", "127.0.0.1:8088"],
        UPSTREAM_GROUPS["upload"]: ["127.0.0.1:8083", "127.0.0.1:8086"],
    }
    # The backends name the groups: static upstreams, nothing for nginx 1.22 to resolve.
    assert values["REGISTRATION_BACKEND"] == UPSTREAM_GROUPS["registration"]
    assert values["UPLOAD_BACKEND"] == UPSTREAM_GROUPS["upload"]
    assert "resolver" not in values["SERVICE_DISCOVERY"]


def test_explicit_replica_ports_replace_scale() -> None:
    values = template_values(
        {"SCALE": "upload=3"}, {"registration": [9001], "upload": [9002, 9010]}
    )
    assert upstream_servers(values["SERVICE_DISCOVERY"]) == {
        "registration_service": ["127.0.0.1:9001"],
        "upload_service": ["127.0.0.1:9002", "127.0.0.1:9010"],
    }


def test_scale_is_checked_and_names_the_variable() -> None:
    assert parse_scale("") == {"registration": 1, "upload": 1, "dispatcher": 1}
    assert parse_scale("upload=2, dispatcher=3") == {
        "registration": 1,
        "upload": 2,
        "dispatcher": 3,
    }
    for wrong in ("gateway=2", "upload=0", "upload=two", "upload", f"upload={MAX_REPLICAS + 1}"):
        with pytest.raises(ConfigError, match="SCALE"):
            parse_scale(wrong)
    # Ports that would make two replicas meet are refused, not half-started.
    with pytest.raises(ConfigError, match="SCALE"):
        replica_ports({"SCALE": "registration=2", "UPLOAD_PORT": str(8082 + PORT_STRIDE)})
    assert replica_ports({"SCALE": "dispatcher=2"})["dispatcher"] == [8084, 8084 + PORT_STRIDE]
