"""services/common/webhooks.py: the only writer of the webhook tables."""

from __future__ import annotations

import re
from pathlib import Path

import services
from services.common import webhooks

SERVICES = Path(services.__file__).parent
WRITE = re.compile(r"(INSERT INTO|UPDATE|DELETE FROM)\s+webhook_(registrations|configurations)\b")


def test_no_other_module_writes_the_webhook_tables() -> None:
    writers = {
        path.relative_to(SERVICES).as_posix()
        for path in SERVICES.rglob("*.py")
        if WRITE.search(path.read_text())
    }
    assert writers == {"common/webhooks.py"}


def test_the_fragments_are_ctes_under_the_names_asked() -> None:
    assert webhooks.disable_from("$1", "$2").strip().startswith("disabled AS (")
    assert webhooks.disable_from("$1", "$2", "off").strip().startswith("off AS (")
    health = webhooks.record_health_from("attempted").strip()
    assert health.startswith("health AS (") and "FROM attempted GROUP BY" in health
