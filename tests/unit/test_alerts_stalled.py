"""RoadmapPipelineStalled from stalled partitions: its identity, figures and text; and which
consumer groups the alerts service watches."""

from __future__ import annotations

import pytest

from contracts.alerts_file import PipelineRule, StallRule
from contracts.records import AlertName
from services.alerts.conditions import (
    LISTED_STALLS,
    PROGRESS_INDICATOR,
    conditions_at,
    stalled_condition,
)
from services.alerts.group_watch import consumed_topics
from services.alerts.settings import AlertsSettings
from services.common.config import ConfigError, load_settings
from services.common.progress import PartitionProgress, Stall
from tests.unit.test_alerts_builders import R0, ROADMAP_ID, jobs_roadmap

INGEST = "ingest (group roadmap-ingest)"


def _stall(consumer: str, partition: int, idle_s: float, lag: int = 3) -> Stall:
    progress = PartitionProgress("roadmap.trade.shipments", partition, 40, 40 + lag, idle_s, True)
    return Stall(consumer, progress, "CorruptRecordException: Invalid CRC (at offset 40)")


def test_no_stall_no_condition() -> None:
    assert stalled_condition(ROADMAP_ID, StallRule(), []) is None


def test_one_stall_names_consumer_partition_offset_and_error() -> None:
    condition = stalled_condition(ROADMAP_ID, StallRule(), [_stall(INGEST, 1, 75.0, lag=17)])
    assert condition is not None
    assert condition.alertname is AlertName.PIPELINE_STALLED
    assert condition.labels == {
        "alertname": "RoadmapPipelineStalled",
        "indicator": PROGRESS_INDICATOR,
        "severity": "critical",
        "owner": "platform",
        "roadmap": ROADMAP_ID,
    }
    assert condition.clock == "wall"
    assert condition.annotations["summary"] == (
        f"{INGEST} stalled on 1 partition: roadmap.trade.shipments partition 1 at offset 40, "
        "17 records behind"
    )
    assert condition.annotations["description"] == (
        "17 records wait to be read and make no progress, so the roadmap's figures are frozen. "
        f"{INGEST}: roadmap.trade.shipments partition 1 at offset 40, 17 records behind, no "
        "progress for 75 s; last error: CorruptRecordException: Invalid CRC (at offset 40). "
        "The runbook says how to find the cause and how to move past a batch that can never "
        "be read."
    )
    assert condition.annotations["actual"] == "1"
    assert condition.annotations["runbook_url"] == "docs/runbooks.md#pipeline_stalled"


def test_many_stalls_list_the_longest_first_and_count_the_rest() -> None:
    metrics = "metrics (group roadmap-metrics)"
    stalls = [_stall(INGEST, p, idle_s=60 + p) for p in range(LISTED_STALLS + 2)]
    stalls.append(_stall(metrics, 0, idle_s=500))
    condition = stalled_condition(ROADMAP_ID, StallRule(owner="data-platform"), stalls)
    assert condition is not None
    summary = condition.annotations["summary"]
    assert summary.startswith(f"{INGEST}, {metrics} stalled on 8 partitions: ")
    assert summary.endswith("partition 0 at offset 40, 3 records behind")
    description = condition.annotations["description"]
    assert description.startswith("24 records wait")
    assert description.index(metrics) < description.index(INGEST)
    assert "... and 3 more partitions." in description
    assert condition.labels["owner"] == "data-platform"


def test_conditions_at_carries_the_stall_with_the_runbook_base() -> None:
    found = conditions_at(
        jobs_roadmap(),
        {},
        R0,
        rule=PipelineRule(),
        pipeline=None,
        stall_rule=StallRule(),
        stalls=[_stall(INGEST, 2, 61.0)],
        runbook_base="https://example.org/repo/",
    )
    stalled = [c for c in found.values() if c.alertname is AlertName.PIPELINE_STALLED]
    assert len(stalled) == 1
    assert stalled[0].annotations["runbook_url"] == (
        "https://example.org/repo/docs/runbooks.md#pipeline_stalled"
    )


def test_the_groups_watched_read_the_topics_the_registry_says() -> None:
    assert consumed_topics("ingest") == [
        "roadmap.trade.shipments",
        "roadmap.projects.milestones",
        "roadmap.hiring.reports",
    ]
    assert consumed_topics("metrics") == ["roadmap.events.v1"]


def test_watch_groups_default_parse_and_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AlertsSettings().watch_groups == {
        "ingest": "roadmap-ingest",
        "metrics": "roadmap-metrics",
    }
    monkeypatch.setenv("ALERTS_WATCH_GROUPS", " ingest = staging-ingest ")
    assert load_settings(AlertsSettings).watch_groups == {"ingest": "staging-ingest"}
    monkeypatch.setenv("ALERTS_WATCH_GROUPS", "")
    assert load_settings(AlertsSettings).watch_groups == {}
    monkeypatch.setenv("ALERTS_WATCH_GROUPS", "alerts=roadmap-alerts-delivery")
    with pytest.raises(ConfigError, match=r"ALERTS_WATCH_GROUPS: .*only ingest and metrics"):
        load_settings(AlertsSettings)
    monkeypatch.setenv("ALERTS_WATCH_GROUPS", "ingest")
    with pytest.raises(ConfigError, match="give service=group"):
        load_settings(AlertsSettings)
    monkeypatch.setenv("ALERTS_STALL_AFTER", "0")
    monkeypatch.delenv("ALERTS_WATCH_GROUPS")
    with pytest.raises(ConfigError, match="ALERTS_STALL_AFTER"):
        load_settings(AlertsSettings)
