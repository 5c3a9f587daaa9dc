"""An indicator at each past month end, from the per-day sums the fold holds. Pure.

Exact and additive like the scorecard: each point carries every partition's components, and its
value is computed from their sums (``contracts/history.py`` says how replicas add up).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from contracts.history import HistoryPoint, IndicatorHistory, month_ends
from contracts.roadmap.components import COMPONENTS
from contracts.roadmap.trajectory import TargetTrajectory
from services.metrics.entities import from_micro
from services.metrics.fold import PartitionState
from services.metrics.plan import IndicatorPlan
from services.metrics.readings import component_names, partition_components, value_of


def history(
    plan: IndicatorPlan,
    states: Mapping[int, PartitionState],
    at: datetime,
    *,
    roadmap: str,
    partition_count: int,
    through: date | None = None,
) -> IndicatorHistory:
    """``plan``'s indicator at the end of every month from its start's to ``at``'s, and at
    ``at`` (the month in progress), over the partitions in ``states``; with ``through`` (a day
    before ``at``'s), up to the end of that day instead."""
    indicator = plan.indicator
    names = component_names(plan)
    trajectory = TargetTrajectory(indicator)
    if through is not None and through < at.date():
        at = datetime.combine(through + timedelta(days=1), time.min, UTC)
        today = through
    else:
        today = at.date()
    points = []
    for on in month_ends(min(indicator.start, today), today):
        per_partition = {
            p: partition_components(plan, s, on, as_of=True) for p, s in sorted(states.items())
        }
        totals = [sum(parts[i] for parts in per_partition.values()) for i in range(len(names))]
        end = at if on == today else datetime.combine(on + timedelta(days=1), time.min, UTC)
        points.append(
            HistoryPoint(
                on=on,
                value=value_of(plan.kind, totals[: len(COMPONENTS[plan.kind])]),
                expected=trajectory.expected(end),
                components={n: from_micro(v) for n, v in zip(names, totals, strict=True)},
                partition_components={
                    p: {n: from_micro(v) for n, v in zip(names, parts, strict=True)}
                    for p, parts in per_partition.items()
                },
            )
        )
    return IndicatorHistory(
        roadmap=roadmap,
        indicator=indicator.id,
        title=indicator.title,
        unit=indicator.unit,
        aggregation=plan.kind,
        step="month",
        evaluated_at=at,
        partitions=sorted(states),
        partition_count=partition_count,
        points=points,
    )
