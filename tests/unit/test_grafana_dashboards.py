"""The Grafana dashboards are generated from the roadmap file, current, and ask only for
metrics the services export (or the Prometheus rules record)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml

from contracts.roadmap.loader import load_roadmap
from services.commands.dashboards import DEFAULT_DIR, dashboards, render, run_dashboards
from services.common.config import KafkaSettings
from services.registry import SERVICES, service_parts
from tests.support.services import REPO

ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count")}


def _exported_names() -> set[str]:
    """Every sample name the three services can expose, from their real registries."""
    names: set[str] = set()
    for service in SERVICES:
        settings_cls, create_app = service_parts(service)
        # Defaults only, never the environment: the same registries everywhere.
        app = create_app(settings_cls.model_construct(kafka=KafkaSettings.model_construct()))
        for family in app.registry.collect():
            names.add(family.name)
            names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ())}
            names |= {sample.name for sample in family.samples}
            if family.type == "info":
                names.add(family.name + "_info")
    return names


def _recorded_names() -> set[str]:
    rules = yaml.safe_load((REPO / "deploy/prometheus/rules/roadmap.rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def _queries() -> list[tuple[str, str]]:
    return [
        (f"{name}: {panel['title']}", target["expr"])
        for name, dashboard in dashboards(ROADMAP).items()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_committed_dashboards_are_what_the_roadmap_generates() -> None:
    """deploy/grafana/dashboards/*.json equal a fresh render (run `make dashboards`)."""
    for name, dashboard in dashboards(ROADMAP).items():
        committed = (REPO / DEFAULT_DIR / name).read_text(encoding="utf-8")
        assert committed == render(dashboard), name


def test_every_query_names_only_exported_or_recorded_metrics() -> None:
    """No panel asks for a metric nobody exports: each ``roadmap_*`` name in a query is a
    sample of a service's registry, and each ``roadmap:*`` name a recording rule."""
    exported, recorded = _exported_names(), _recorded_names()
    unknown = []
    for where, expr in _queries():
        for metric in re.findall(r"\b(roadmap_[a-z0-9_]+)", expr):
            if metric not in exported:
                unknown.append((where, metric))
        for metric in re.findall(r"(roadmap:[a-z0-9_:]+)", expr):
            if metric not in recorded:
                unknown.append((where, metric))
    assert unknown == []


def test_the_scorecard_has_a_row_per_indicator() -> None:
    """Four panels per indicator of the roadmap file, each selecting that indicator."""
    panels = dashboards(ROADMAP)["scorecard.json"]["panels"]
    assert len(panels) == 4 * len(ROADMAP.indicators)
    for indicator in ROADMAP.indicators:
        selector = f'indicator="{indicator.id}"'
        mine = [p for p in panels if any(selector in t["expr"] for t in p["targets"])]
        assert len(mine) == 4, indicator.id


def test_every_panel_uses_the_provisioned_datasource() -> None:
    """Panels and targets use the datasource uid Grafana is provisioned with."""
    provisioned = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for dashboard in dashboards(ROADMAP).values():
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid
            assert {t["datasource"]["uid"] for t in panel["targets"]} == {uid}


@pytest.mark.parametrize("stale", [True, False])
def test_check_reports_stale_dashboards(tmp_path: Path, stale: bool) -> None:
    """``dashboards --check`` exits 1 naming a stale file, 0 once written."""
    roadmap = REPO / "deploy" / "roadmap.yaml"
    assert run_dashboards(roadmap, tmp_path, check=False, stdout=io.StringIO()) == 0
    if stale:
        (tmp_path / "trade.json").write_text(json.dumps({"panels": []}))
    said = io.StringIO()
    assert run_dashboards(roadmap, tmp_path, check=True, stdout=said) == (1 if stale else 0)
    assert ("trade.json" in said.getvalue()) is stale
