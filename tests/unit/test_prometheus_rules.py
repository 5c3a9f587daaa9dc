"""The Prometheus rules in deploy/ are generated from the roadmap and alerts files, and current."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from contracts.alerts_file import load_alerts_file
from contracts.records import AlertName
from contracts.roadmap.loader import load_roadmap
from services.alerts.conditions import stalled_condition
from services.commands.rules import DEFAULT_OUT, render_rules, run_rules
from services.common.progress import PartitionProgress, Stall
from tests.support.services import REPO

ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")
ALERTS = load_alerts_file(REPO / "deploy" / "alerts.yaml")


def test_committed_rules_are_what_the_files_generate() -> None:
    """deploy/prometheus/rules/roadmap.rules.yml equals a fresh render (run `make rules`)."""
    committed = (REPO / DEFAULT_OUT).read_text(encoding="utf-8")
    assert committed == render_rules(ROADMAP, ALERTS)


def test_every_indicator_gets_its_three_alerts_with_the_service_labels() -> None:
    """Per indicator: behind, deadline missed and stale, labelled as the alerts service labels
    them, with the ``for`` of the alerts file; at risk for the projected ones (the flows: jobs
    and road tonnes, not the project stocks, the growth rate or the share); plus the two
    pipeline alerts."""
    document = yaml.safe_load(render_rules(ROADMAP, ALERTS))
    alerts = next(g for g in document["groups"] if g["name"] == "roadmap.alerts")["rules"]
    seen = {(rule["alert"], rule["labels"]["indicator"]) for rule in alerts}
    per_indicator = {
        AlertName.TARGET_BEHIND.value,
        AlertName.DEADLINE_MISSED.value,
        AlertName.INDICATOR_STALE.value,
    }
    assert seen == {
        (name, indicator.id) for indicator in ROADMAP.indicators for name in per_indicator
    } | {
        (AlertName.TARGET_AT_RISK.value, indicator)
        for indicator in ("jobs_created", "road_freight_tonnes")
    } | {
        (AlertName.PIPELINE_REJECTING.value, "ingest_dlq_ratio"),
        (AlertName.PIPELINE_STALLED.value, "pipeline_progress"),
    }
    jobs = next(
        r
        for r in alerts
        if (r["alert"], r["labels"]["indicator"]) == ("RoadmapTargetBehind", "jobs_created")
    )
    assert jobs["labels"] == {
        "indicator": "jobs_created",
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": "kz-by-2025-2029",
    }
    assert jobs["for"] == "1d"
    # The deadline is the end of 2029-12-31: 2030-01-01T00:00Z.
    assert "vector(time()) < 1893456000" in jobs["expr"]


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    """``rules --check`` exits 1 naming the file when it differs, 0 once it is written."""
    out = tmp_path / "roadmap.rules.yml"
    out.write_text("groups: []\n", encoding="utf-8")
    roadmap, alerts = REPO / "deploy" / "roadmap.yaml", REPO / "deploy" / "alerts.yaml"
    said = io.StringIO()
    assert run_rules(roadmap, alerts, out, check=True, stdout=said) == 1
    assert f"{out} is stale" in said.getvalue()
    assert run_rules(roadmap, alerts, out, check=False, stdout=io.StringIO()) == 0
    assert run_rules(roadmap, alerts, out, check=True, stdout=io.StringIO()) == 0


def test_the_stalled_rule_has_the_identity_the_alerts_service_gives_the_alert() -> None:
    """Both sources of RoadmapPipelineStalled carry the same labels, so Alertmanager shows one
    alert; critical and owned by the owner the alerts file names, paging at once."""
    document = yaml.safe_load(render_rules(ROADMAP, ALERTS))
    alerts = next(g for g in document["groups"] if g["name"] == "roadmap.alerts")["rules"]
    rule = next(r for r in alerts if r["alert"] == AlertName.PIPELINE_STALLED.value)
    stall = Stall(
        "ingest (group roadmap-ingest)",
        PartitionProgress("roadmap.trade.shipments", 1, 42, 45, 75.0, True),
        "CorruptRecordException: Invalid CRC",
    )
    condition = stalled_condition(ROADMAP.roadmap, ALERTS.stalled, [stall])
    assert condition is not None
    assert condition.labels == {"alertname": rule["alert"], **rule["labels"]}
    assert rule["labels"]["severity"] == "critical"
    assert rule["labels"]["owner"] == ALERTS.stalled.owner == "platform"
    assert rule["expr"] == "sum(roadmap_consumer_stalled) > 0"
    assert rule["for"] == "0s"
    assert rule["annotations"]["runbook_url"] == "docs/runbooks.md#pipeline_stalled"


def test_at_risk_is_a_warning_on_the_projection_while_not_behind() -> None:
    """The same labels as the alerts service's RoadmapTargetAtRisk: severity warning, whatever
    the indicator's."""
    document = yaml.safe_load(render_rules(ROADMAP, ALERTS))
    alerts = next(g for g in document["groups"] if g["name"] == "roadmap.alerts")["rules"]
    at_risk = {r["labels"]["indicator"]: r for r in alerts if r["alert"] == "RoadmapTargetAtRisk"}
    assert {r["labels"]["severity"] for r in at_risk.values()} == {"warning"}
    jobs = at_risk["jobs_created"]
    assert jobs["for"] == "1d"
    assert 'roadmap_indicator_projected{indicator="jobs_created"}' in jobs["expr"]
    assert ">= max without (instance, job, service) (roadmap_indicator_expected" in jobs["expr"]
    assert "vector(time()) < 1893456000" in jobs["expr"]
