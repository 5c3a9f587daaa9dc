"""Histories from one or several metrics replicas, put together exactly. Pure.

Each replica answers for the partitions it owns, with every point's components per partition.
Every partition is taken once (from the answer evaluated last, if two claim it), the components
are added, and the value is taken from the sums, as the alerts service does with KPI snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from contracts.history import IndicatorHistory
from contracts.roadmap.components import COMPONENTS, indicator_value
from contracts.roadmap.projection import PACE_COMPONENT


class IncompleteHistory(ValueError):
    """The answers do not cover every partition, or disagree on the months."""


@dataclass(frozen=True, slots=True)
class Point:
    on: date
    value: Decimal | None
    expected: Decimal
    recent: Decimal | None
    """The pace window's sum on that day (projected indicators only)."""


@dataclass(frozen=True, slots=True)
class History:
    indicator: str
    evaluated_at: datetime
    points: list[Point]


def combine(answers: Sequence[IndicatorHistory]) -> History:
    """One history from every replica's answer for one indicator."""
    if not answers:
        raise IncompleteHistory("no answer")
    ordered = sorted(answers, key=lambda a: a.evaluated_at)
    first = ordered[-1]
    count = max(a.partition_count for a in ordered)
    owner: dict[int, IndicatorHistory] = {}
    for answer in ordered:
        if [p.on for p in answer.points] != [p.on for p in first.points]:
            raise IncompleteHistory(
                f"{first.indicator}: replicas answered for different months "
                f"({answer.points[-1].on} and {first.points[-1].on}); ask again"
            )
        for partition in answer.partitions:
            owner[partition] = answer  # the later evaluation wins
    missing = sorted(set(range(count)) - set(owner))
    if missing:
        raise IncompleteHistory(
            f"{first.indicator}: partitions {missing} of {count} are not covered by the metrics "
            "URLs given; give every replica's URL"
        )
    names = COMPONENTS[first.aggregation]
    points = []
    for index, point in enumerate(first.points):
        totals = {name: Decimal(0) for name in (*names, PACE_COMPONENT)}
        for partition, answer in owner.items():
            parts = answer.points[index].partition_components.get(partition, {})
            for name in totals:
                totals[name] += parts.get(name, Decimal(0))
        projected = PACE_COMPONENT in point.components
        points.append(
            Point(
                on=point.on,
                value=indicator_value(first.aggregation, [totals[n] for n in names]),
                expected=point.expected,
                recent=totals[PACE_COMPONENT] if projected else None,
            )
        )
    return History(first.indicator, first.evaluated_at, points)
