"""Shared builders for the alerts service's unit tests (no tests here).

The test roadmap's ``jobs_created`` indicator is the shipped one: linear from 0 at
2025-01-01T00:00Z to 1,800 at the END of 2029-12-31, i.e. 2030-01-01T00:00Z.
That span is 5 * 365 + 1 (2028 is a leap year) = 1,826 days = 157,766,400 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from contracts.alerts_file import Lifecycle, PipelineRule
from contracts.records import AlertName, AlertState, AlertTransition, KpiSnapshot
from contracts.roadmap import RoadmapFile, parse_roadmap
from services.alerts.board import IndicatorBoard
from services.alerts.conditions import Condition, conditions_at
from services.alerts.lifecycle import AlertBook, Moment, evaluate

ROADMAP_ID = "test-roadmap"
JOBS = "jobs_created"
FLOUR = "flour_share"
PROJECTS = "projects"
GROWTH = "freight_growth"

JOBS_YAML = """\
  - id: jobs_created
    title: Jobs created by joint industrial projects
    unit: jobs
    compute:
      aggregation: sum
      event_type: hiring.report
      field: jobs_created
      window: since_start
    baseline: 0
    target: 1800
    start: 2025-01-01
    deadline: 2029-12-31
    trajectory: linear
    tolerance: 0.10
    severity: warning
    owner: industry-office
    runbook: docs/runbooks.md#jobs_created
    freshness: 45d
"""

OTHERS_YAML = """\
  - id: flour_share
    title: Flour share of exports
    unit: ratio
    compute:
      aggregation: share
      numerator: {event_type: trade.shipment, field: value_usd, where: {commodity: wheat_flour}}
      denominator: {event_type: trade.shipment, field: value_usd}
    baseline: 0.1
    target: 0.1
    start: 2025-01-01
    deadline: 2029-12-31
    tolerance: 0.2
    severity: critical
    owner: trade-ministry
    runbook: docs/runbooks.md#flour_share
    freshness: 30d
  - id: projects
    title: Joint projects
    unit: projects
    compute: {aggregation: count, event_type: project.milestone}
    baseline: 0
    target: 14
    start: 2025-01-01
    deadline: 2029-12-31
    tolerance: 0.1
    severity: warning
    owner: industry-office
    runbook: docs/runbooks.md#projects
  - id: freight_growth
    title: Freight growth
    unit: ratio
    compute:
      aggregation: yoy_growth
      measure: {event_type: trade.shipment, field: tonnes}
    baseline: 0.19
    target: 0.19
    start: 2025-01-01
    deadline: 2029-12-31
    tolerance: 0.25
    severity: info
    owner: transport-ministry
    runbook: docs/runbooks.md#freight_growth
"""


def _roadmap(indicators: str) -> RoadmapFile:
    text = f"version: 1\nroadmap: {ROADMAP_ID}\ntitle: Test roadmap\nindicators:\n{indicators}"
    return parse_roadmap(text, Path("test-roadmap.yaml"))


def jobs_roadmap() -> RoadmapFile:
    """One indicator only: nothing else can go stale in lifecycle scenarios."""
    return _roadmap(JOBS_YAML)


def full_roadmap() -> RoadmapFile:
    """jobs_created plus a share, a count and a yoy_growth indicator."""
    return _roadmap(JOBS_YAML + OTHERS_YAML)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


BEGINS = utc(2025, 1, 1)
ENDS = utc(2030, 1, 1)
"""The end of the deadline day 2029-12-31."""

R0 = utc(2028, 10, 1, 12)
"""2025-01-01 + 1,369.5 days: 1,369.5 / 1,826 = 0.75 of the way, so expected = 1,350 jobs.
(1,095 days to 2028-01-01, then 274 days to 2028-10-01 in the leap year, then 12 hours.)"""

W0 = utc(2031, 3, 2, 8)
"""The wall clock of scenarios: deliberately far from the roadmap clock."""


def snapshot(
    indicator: str,
    parts: Mapping[int, Mapping[str, int | str | Decimal]],
    *,
    count: int,
    evaluated_at: datetime,
    last_event_at: datetime | None = None,
    roadmap: str = ROADMAP_ID,
    per_partition: bool = True,
) -> KpiSnapshot:
    """A snapshot over ``parts``' partitions; ``value`` is a decoy (-1): the board must not use it.

    ``per_partition=False`` leaves ``partition_components`` empty (a one-partition snapshot
    may carry only the totals).
    """
    partition_components = {
        p: {name: Decimal(v) for name, v in comps.items()} for p, comps in parts.items()
    }
    totals: dict[str, Decimal] = {}
    for comps in partition_components.values():
        for name, v in comps.items():
            totals[name] = totals.get(name, Decimal(0)) + v
    return KpiSnapshot(
        roadmap=roadmap,
        indicator=indicator,
        value=Decimal(-1),
        expected=Decimal(0),
        target=Decimal(0),
        components=totals,
        partitions=sorted(parts),
        partition_count=count,
        partition_components=partition_components if per_partition else {},
        evaluated_at=evaluated_at,
        last_event_at=last_event_at,
    )


def jobs_board(
    roadmap: RoadmapFile, total: int, at: datetime, last_event_at: datetime
) -> IndicatorBoard:
    """A board where two replicas report ``jobs_created`` (partition 0: 700, partition 1: rest)."""
    board = IndicatorBoard(roadmap)
    set_jobs(board, total, at, last_event_at)
    return board


def set_jobs(board: IndicatorBoard, total: int, at: datetime, last_event_at: datetime) -> None:
    board.add(snapshot(JOBS, {0: {"sum": 700}}, count=2, evaluated_at=at, last_event_at=None))
    board.add(
        snapshot(
            JOBS,
            {1: {"sum": total - 700}},
            count=2,
            evaluated_at=at,
            last_event_at=last_event_at,
        )
    )


def lifecycle(**fields: Any) -> Lifecycle:
    """A lifecycle from YAML-like fields, e.g. ``defaults={"for": "10m"}``."""
    return Lifecycle.model_validate(fields)


SCENARIO_LIFECYCLE = {
    "defaults": {"for": "10m", "keep_firing_for": "30m"},
    "per_alert": {
        "RoadmapDeadlineMissed": {"for": "0s", "keep_firing_for": "0s"},
        "RoadmapIndicatorStale": {"for": "0s", "keep_firing_for": "0s"},
        "RoadmapPipelineRejecting": {"for": "5m", "keep_firing_for": "10m"},
    },
    "repeat_interval": "1m",
}


def holding(roadmap: RoadmapFile, board: IndicatorBoard, at: datetime) -> dict[str, Condition]:
    return conditions_at(roadmap, board.views(), at, rule=PipelineRule(), pipeline=None)


def step(
    book: AlertBook,
    roadmap: RoadmapFile,
    board: IndicatorBoard,
    now: Moment,
    life: Lifecycle,
) -> list[AlertTransition]:
    """Evaluate at ``now`` and settle, as the evaluator does once records are published."""
    evaluation = evaluate(book, holding(roadmap, board, now.roadmap), now, life)
    book.settle(evaluation)
    return evaluation.records


def key_of(alertname: AlertName, indicator: str = JOBS) -> str:
    return f"{ROADMAP_ID}/{alertname.value}/{indicator}"


def transition(
    state: AlertState,
    *,
    at: datetime,
    started_at: datetime,
    repeat: int = 0,
    previous_at: datetime | None = None,
    severity: str = "warning",
    owner: str = "industry-office",
    alertname: AlertName = AlertName.TARGET_BEHIND,
    annotations: Mapping[str, str] | None = None,
) -> AlertTransition:
    """A hand-made alert record for routing and payload tests."""
    return AlertTransition(
        alertname=alertname,
        state=state,
        labels={
            "alertname": alertname.value,
            "indicator": JOBS,
            "severity": severity,
            "owner": owner,
            "roadmap": ROADMAP_ID,
        },
        annotations=dict(
            annotations
            if annotations is not None
            else {
                "summary": "Jobs: 230 behind the trajectory (17%)",
                "description": "Jobs: 1,120 of 1,800 jobs (62%); 230 behind (17%).",
                "runbook_url": "https://example.org/docs/runbooks.md#jobs_created",
            }
        ),
        since=started_at,
        started_at=started_at,
        at=at,
        repeat=repeat,
        previous_at=previous_at,
        dedup_key="0123456789abcdef0123456789abcdef",
    )


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)
