"""Every runbook an alert can point to exists in ``docs/runbooks.md``."""

from __future__ import annotations

import re

from contracts.alerts_file import load_alerts_file
from contracts.roadmap.loader import load_roadmap
from tests.support.services import REPO


def _anchors() -> set[str]:
    text = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^## (\S+)$", text, flags=re.MULTILINE)}


def _runbooks() -> list[str]:
    roadmap = load_roadmap(REPO / "deploy" / "roadmap.yaml")
    alerts = load_alerts_file(REPO / "deploy" / "alerts.yaml")
    return [i.runbook for i in roadmap.indicators] + [alerts.pipeline.runbook]


def test_every_runbook_link_has_its_section() -> None:
    """Each ``docs/runbooks.md#anchor`` in the roadmap and alerts files names a ``##`` section."""
    anchors = _anchors()
    missing = []
    for link in _runbooks():
        path, _, anchor = link.partition("#")
        if path != "docs/runbooks.md" or anchor not in anchors:
            missing.append(link)
    assert missing == []
