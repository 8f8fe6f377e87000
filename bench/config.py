"""The configuration `make bench` runs: the defaults a user gets (SPEC section 13), where only
ALLOW_PRIVATE_URLS differs (to reach the local receivers), and the lines that say so."""

from __future__ import annotations

import os
from collections.abc import Mapping

from deploy.gateway.render import GatewaySettings
from services.common.settings import Env
from services.dispatcher.settings import DispatcherSettings
from services.upload.settings import UploadSettings

# The one setting that differs from a fresh install's defaults.
CHANGED = {"ALLOW_PRIVATE_URLS": "true"}
# Inherited from the shell only for the processes to start; nothing that configures them.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def bench_env(**where: str) -> dict[str, str]:
    """A service's environment: the defaults, ALLOW_PRIVATE_URLS=true, and `where` (the
    database, vhost, folder and ports of this run, which are not tuning)."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", **CHANGED, **where)
    return env


def configuration(env: Mapping[str, str]) -> dict[str, str]:
    """The settings that bear on the figures, as the services read them from `env`."""
    read = Env(env)
    dispatcher = DispatcherSettings.from_env(read)
    upload = UploadSettings.from_env(read)
    gateway = GatewaySettings.from_env(read)
    return {
        "ALLOW_PRIVATE_URLS": str(dispatcher.allow_private_urls).lower(),
        "RATE_LIMIT_PER_SECOND": f"{upload.rate_limit_per_second:g}",
        "GATEWAY_RATE_PER_SECOND": str(gateway.rate_per_second),
        "GATEWAY_RATE_BURST": str(gateway.rate_burst),
        "DISPATCH_PREFETCH": str(dispatcher.prefetch),
        "DISPATCH_PER_ENDPOINT_CONCURRENCY": str(dispatcher.per_endpoint_concurrency),
        "DISPATCH_MAX_CONNECTIONS": str(dispatcher.max_connections),
        "MAX_UPLOAD_BYTES": str(upload.max_upload_bytes),
        "AUTH_MODE": upload.auth_mode,
        "SECRETS_KEY": "set" if dispatcher.secrets_keys else "unset",
        "LOG_LEVEL": upload.log_level,
        "LOG_FORMAT": upload.log_format,
        "LOG_SUCCESS_SAMPLE": f"{dispatcher.log_success_sample:g}",
    }


def describe(env: Mapping[str, str]) -> str:
    settings = configuration(env)
    changed = ", ".join(f"{name}={value}" for name, value in CHANGED.items())
    listed = " ".join(f"{name}={value}" for name, value in settings.items())
    return f"configuration: the defaults, except {changed}\n  {listed}"
