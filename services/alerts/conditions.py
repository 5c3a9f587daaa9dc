"""Which alert conditions hold at a moment, with the figures and text for each. Pure.

Per indicator, from its current view and its trajectory (DESIGN sections 4 and 6):
- ``RoadmapTargetBehind``: before the deadline, ``actual < expected * (1 - tolerance)``;
- ``RoadmapTargetAtRisk`` (a warning): before the deadline, not behind, but the value projected
  at the deadline at the recent pace is short of ``target * (1 - tolerance)``;
- ``RoadmapDeadlineMissed``: after the deadline, the same test against the target;
- ``RoadmapIndicatorStale``: no event newer than ``freshness`` (counting from the start when
  no data ever came).
Plus ``RoadmapPipelineRejecting`` when the DLQ share over the window is above the limit, and
``RoadmapPipelineStalled`` while a consumer has records to read and makes no progress.
Nothing is said about an indicator before its start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple

from contracts.alerts_file import PipelineRule, StallRule
from contracts.keys import alert_key
from contracts.records import AlertName
from contracts.roadmap.model import Indicator, RoadmapFile, Severity
from contracts.roadmap.projection import Projection, is_at_risk
from contracts.roadmap.trajectory import TargetTrajectory
from services.alerts.board import IndicatorView
from services.alerts.pipeline_window import PipelineFigures
from services.alerts.wording import (
    amount,
    difference,
    duration,
    moment,
    percent,
    trajectory_name,
    with_unit,
)
from services.common.progress import Stall, describe, where

PIPELINE_INDICATOR = "ingest_dlq_ratio"
"""The ``indicator`` label of ``RoadmapPipelineRejecting``."""
PROGRESS_INDICATOR = "pipeline_progress"
"""The ``indicator`` label of ``RoadmapPipelineStalled``."""
LISTED_STALLS = 5
"""Stalled partitions described one by one in the alert; the rest are counted."""

Clock = Literal["roadmap", "wall"]


class Condition(NamedTuple):
    """An alert whose condition holds now. ``clock`` says which time its ``for`` runs on."""

    alertname: AlertName
    labels: dict[str, str]
    annotations: dict[str, str]
    clock: Clock = "roadmap"

    @property
    def key(self) -> str:
        return alert_key(self.labels).decode()


def _labels(alertname: AlertName, roadmap: str, indicator: Indicator) -> dict[str, str]:
    return {
        "alertname": alertname.value,
        "indicator": indicator.id,
        "severity": indicator.severity.value,
        "owner": indicator.owner,
        "roadmap": roadmap,
    }


def _figures(
    indicator: Indicator, actual: object, expected: object, shortfall: object
) -> dict[str, str]:
    return {
        "actual": str(actual),
        "expected": str(expected),
        "target": str(indicator.target),
        "shortfall": str(shortfall),
        "unit": indicator.unit,
        "deadline": indicator.deadline.isoformat(),
        "runbook_url": indicator.runbook,
    }


def indicator_conditions(
    roadmap: str, indicator: Indicator, view: IndicatorView, at: datetime
) -> list[Condition]:
    """The conditions that hold for one indicator at ``at`` (roadmap clock)."""
    trajectory = TargetTrajectory(indicator)
    if at < trajectory.begins_at:
        return []
    found = []
    unit, title = indicator.unit, indicator.title
    reference = view.last_event_at or trajectory.begins_at
    if at - reference > indicator.freshness:
        latest = (
            f"no new data since {moment(view.last_event_at)}"
            if view.last_event_at
            else f"no data since the roadmap started on {indicator.start.isoformat()}"
        )
        found.append(
            Condition(
                AlertName.INDICATOR_STALE,
                _labels(AlertName.INDICATOR_STALE, roadmap, indicator),
                {
                    "summary": f"{title}: no recent data",
                    "description": (
                        f"{title}: {latest}; data is expected at least every "
                        f"{duration(indicator.freshness)}. Its value may be out of date."
                    ),
                    "last_event_at": view.last_event_at.isoformat() if view.last_event_at else "",
                    "freshness": duration(indicator.freshness),
                    "runbook_url": indicator.runbook,
                },
            )
        )
    actual = view.value
    if actual is None:
        return found
    progress = percent(actual, indicator.target)
    if at >= trajectory.ends_at:
        target = indicator.target
        if actual < target * (1 - indicator.tolerance):
            gap = target - actual
            found.append(
                Condition(
                    AlertName.DEADLINE_MISSED,
                    _labels(AlertName.DEADLINE_MISSED, roadmap, indicator),
                    {
                        "summary": f"{title}: target missed by {difference(gap, unit)}",
                        "description": (
                            f"{title}: {amount(actual, unit)} of {with_unit(target, unit)} "
                            f"({progress}) after the deadline {indicator.deadline.isoformat()}; "
                            f"target missed by {difference(gap, unit)} ({percent(gap, target)})."
                        ),
                        **_figures(indicator, actual, target, gap),
                    },
                )
            )
        return found
    if not trajectory.is_behind(actual, at):
        if view.projection is not None and is_at_risk(indicator, view.projection):
            found.append(_at_risk(roadmap, indicator, actual, view.projection, at))
        return found
    expected = trajectory.expected(at)
    gap = expected - actual
    found.append(
        Condition(
            AlertName.TARGET_BEHIND,
            _labels(AlertName.TARGET_BEHIND, roadmap, indicator),
            {
                "summary": (
                    f"{title}: {difference(gap, unit)} behind the trajectory "
                    f"({percent(gap, expected)})"
                ),
                "description": (
                    f"{title}: {amount(actual, unit)} of {with_unit(indicator.target, unit)} "
                    f"({progress}); expected {amount(expected, unit)} by now on the "
                    f"{trajectory_name(indicator)} to {indicator.deadline.isoformat()}; "
                    f"{difference(gap, unit)} behind ({percent(gap, expected)})."
                ),
                **_figures(indicator, actual, expected, gap),
            },
        )
    )
    return found


def _at_risk(
    roadmap: str, indicator: Indicator, actual: Decimal, projection: Projection, at: datetime
) -> Condition:
    """``RoadmapTargetAtRisk`` (always a warning): on the trajectory today, short at the end."""
    unit, title, target = indicator.unit, indicator.title, indicator.target
    gap = target - projection.projected
    reached = (
        f"it would reach the target on {projection.reached_on.isoformat()}"
        if projection.reached_on is not None
        else "at this pace it would never reach the target"
    )
    labels = _labels(AlertName.TARGET_AT_RISK, roadmap, indicator)
    labels["severity"] = Severity.WARNING.value
    expected = TargetTrajectory(indicator).expected(at)
    return Condition(
        AlertName.TARGET_AT_RISK,
        labels,
        {
            "summary": (
                f"{title}: at risk, {amount(projection.projected, unit)} projected by "
                f"{indicator.deadline.isoformat()} against {with_unit(target, unit)}"
            ),
            "description": (
                f"{title}: {amount(actual, unit)} of {with_unit(target, unit)} "
                f"({percent(actual, target)}), not behind its trajectory yet. At the pace of the "
                f"last {duration(indicator.pace_window)} ({amount(projection.pace_per_day, unit)} "
                f"a day) it would be {amount(projection.projected, unit)} by the deadline "
                f"{indicator.deadline.isoformat()}, {difference(gap, unit)} short "
                f"({percent(gap, target)}); {reached}."
            ),
            **_figures(indicator, actual, expected, gap),
            "projected": str(projection.projected),
            "projected_completion_on": (
                projection.reached_on.isoformat() if projection.reached_on else ""
            ),
        },
    )


def pipeline_condition(
    roadmap: str, rule: PipelineRule, figures: PipelineFigures
) -> Condition | None:
    """``RoadmapPipelineRejecting`` when enough messages were seen and too many were rejected."""
    ratio = figures.ratio
    if ratio is None or figures.total < rule.min_messages or ratio <= rule.dlq_ratio_limit:
        return None
    window = duration(figures.window)
    return Condition(
        AlertName.PIPELINE_REJECTING,
        {
            "alertname": AlertName.PIPELINE_REJECTING.value,
            "indicator": PIPELINE_INDICATOR,
            "severity": rule.severity,
            "owner": rule.owner,
            "roadmap": roadmap,
        },
        {
            "summary": f"Ingest is rejecting {amount(ratio, 'ratio')} of messages",
            "description": (
                f"Ingest sent {figures.rejected:,} of {figures.total:,} messages "
                f"({amount(ratio, 'ratio')}) to the DLQ in the last {window}; the limit is "
                f"{amount(rule.dlq_ratio_limit, 'ratio')}. Upstream data is being lost to "
                "the roadmap until the cause is fixed: see the DLQ records' reasons."
            ),
            "actual": str(ratio),
            "expected": str(rule.dlq_ratio_limit),
            "target": str(rule.dlq_ratio_limit),
            "shortfall": str(ratio - rule.dlq_ratio_limit),
            "unit": "ratio",
            "runbook_url": rule.runbook,
        },
        clock="wall",
    )


def stalled_condition(roadmap: str, rule: StallRule, stalls: Sequence[Stall]) -> Condition | None:
    """``RoadmapPipelineStalled`` while any partition is stalled, naming each (up to five)."""
    if not stalls:
        return None
    ordered = sorted(stalls, key=lambda s: (-s.progress.idle_s, s.consumer, s.progress.topic))
    first = ordered[0]
    consumers = sorted({s.consumer for s in stalls})
    lines = [f"{s.consumer}: {describe(s.progress)}; {s.reason}." for s in ordered]
    if len(lines) > LISTED_STALLS:
        lines = [*lines[:LISTED_STALLS], f"... and {len(lines) - LISTED_STALLS} more partitions."]
    waiting = sum(s.progress.lag for s in stalls)
    return Condition(
        AlertName.PIPELINE_STALLED,
        {
            "alertname": AlertName.PIPELINE_STALLED.value,
            "indicator": PROGRESS_INDICATOR,
            "severity": rule.severity,
            "owner": rule.owner,
            "roadmap": roadmap,
        },
        {
            "summary": (
                f"{', '.join(consumers)} stalled on {len(stalls)} "
                f"partition{'s' if len(stalls) > 1 else ''}: {where(first.progress)}"
            ),
            "description": (
                f"{waiting:,} records wait to be read and make no progress, so the roadmap's "
                "figures are frozen. " + " ".join(lines) + " The runbook says how to find the "
                "cause and how to move past a batch that can never be read."
            ),
            "actual": str(len(stalls)),
            "expected": "0",
            "target": "0",
            "shortfall": str(len(stalls)),
            "unit": "partitions",
            "runbook_url": rule.runbook,
        },
        clock="wall",
    )


def conditions_at(
    roadmap: RoadmapFile,
    views: Mapping[str, IndicatorView],
    at: datetime,
    *,
    rule: PipelineRule,
    pipeline: PipelineFigures | None,
    stall_rule: StallRule | None = None,
    stalls: Sequence[Stall] = (),
    runbook_base: str = "",
) -> dict[str, Condition]:
    """Every condition holding at ``at``, by alert key; runbook paths are put after
    ``runbook_base`` (e.g. the repository's URL) to make ``runbook_url``."""
    found: list[Condition] = []
    for indicator in roadmap.indicators:
        view = views.get(indicator.id, IndicatorView(None, None, None, 0, 0))
        found += indicator_conditions(roadmap.roadmap, indicator, view, at)
    if pipeline is not None:
        rejecting = pipeline_condition(roadmap.roadmap, rule, pipeline)
        if rejecting is not None:
            found.append(rejecting)
    stalled = stalled_condition(roadmap.roadmap, stall_rule or StallRule(), stalls)
    if stalled is not None:
        found.append(stalled)
    if runbook_base:
        for condition in found:
            path = condition.annotations["runbook_url"]
            condition.annotations["runbook_url"] = runbook_base.rstrip("/") + "/" + path
    return {c.key: c for c in found}
