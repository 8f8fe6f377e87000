"""`make run`'s replicas: `SCALE="dispatcher=3 upload=2"` read, and the port of each replica."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.common.settings import ConfigError, Env
from services.dispatcher.settings import DispatcherSettings
from services.registration.settings import RegistrationSettings
from services.upload.settings import UploadSettings

# Each service's port variable, and the settings class whose default port it overrides.
ServiceSettings = type[RegistrationSettings] | type[UploadSettings] | type[DispatcherSettings]
SERVICE_PORTS: dict[str, tuple[str, ServiceSettings]] = {
    "registration": ("REGISTRATION_PORT", RegistrationSettings),
    "upload": ("UPLOAD_PORT", UploadSettings),
    "dispatcher": ("DISPATCHER_PORT", DispatcherSettings),
}
# Replica n (from 1) of a service listens on its port + (n - 1) * PORT_STRIDE, so with the
# default ports 8082, 8083, 8084 the services' replicas interleave: registration 8082, 8085,
# 8088; upload 8083, 8086, 8089; dispatcher 8084, 8087, 8090.
PORT_STRIDE = len(SERVICE_PORTS)
MAX_REPLICAS = 16
SCALE_ITEM = re.compile(r"([a-z]+)=([0-9]+)")


def parse_scale(text: str) -> dict[str, int]:
    """Replicas per service from `name=count` items (spaces or commas between); one each
    for a service not named."""
    counts = dict.fromkeys(SERVICE_PORTS, 1)
    for item in text.replace(",", " ").split():
        match = SCALE_ITEM.fullmatch(item)
        if match is None or match.group(1) not in SERVICE_PORTS:
            raise ConfigError(
                f"SCALE items must be SERVICE=COUNT with SERVICE one of "
                f"{', '.join(SERVICE_PORTS)}, got {item!r}"
            )
        count = int(match.group(2))
        if not 1 <= count <= MAX_REPLICAS:
            raise ConfigError(f"SCALE: {item!r}: a count from 1 to {MAX_REPLICAS}")
        counts[match.group(1)] = count
    return counts


def replica_ports(environ: Mapping[str, str]) -> dict[str, list[int]]:
    """The port of every replica of every service, from SCALE and the services' ports."""
    env = Env(environ)
    scale = parse_scale(environ.get("SCALE", ""))
    ports = {}
    for service, (variable, settings) in SERVICE_PORTS.items():
        base = env.integer(variable, settings.port, 1, 65535)
        ports[service] = [base + index * PORT_STRIDE for index in range(scale[service])]
    every = [port for service_ports in ports.values() for port in service_ports]
    if len(set(every)) < len(every) or max(every) > 65535:
        raise ConfigError(
            f"SCALE: replica n of a service listens on its port + {PORT_STRIDE} * (n - 1); "
            f"with these ports two replicas would share one or pass 65535: {ports}"
        )
    return ports
