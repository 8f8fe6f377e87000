"""client/openapi.json, the snapshot both SDKs are generated from (client/publisher and
client/typescript), is the document the services serve: after an API change, `make
sdk-snapshot` rewrites it, and this test fails until someone does."""

from __future__ import annotations

import json
from pathlib import Path

from services.registration.openapi import openapi_document

SNAPSHOT = Path(__file__).resolve().parents[1] / "client" / "openapi.json"


def test_the_sdk_snapshot_is_the_live_document() -> None:
    assert json.loads(SNAPSHOT.read_text()) == openapi_document(), (
        "client/openapi.json is stale: run `make sdk-snapshot` and commit it"
    )
