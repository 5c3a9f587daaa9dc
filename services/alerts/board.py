"""The latest known value of every indicator, put together from KPI snapshots. Pure.

Metrics replicas each publish snapshots for the canonical partitions they own, with the
components of every partition. For each partition the freshest snapshot that covers it is
used; the components are added over partitions and the value is taken from the sums, so
replicas add up exactly and a ratio is never averaged; so is the projection, from the summed
``recent`` components. Until every partition is covered the value is unknown: a partial sum
would look like a shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from contracts.records import KpiSnapshot
from contracts.roadmap.components import COMPONENTS, indicator_value
from contracts.roadmap.model import RoadmapFile
from contracts.roadmap.projection import PACE_COMPONENT, Projection, is_projected, project


class IndicatorView(NamedTuple):
    """What the alerts service knows about one indicator."""

    value: Decimal | None
    """None until every partition is covered, or when a ratio is undefined."""
    last_event_at: datetime | None
    evaluated_at: datetime | None
    """When the freshest snapshot was computed (None: no snapshot yet)."""
    covered: int
    partition_count: int
    projection: Projection | None = None
    """From the summed ``recent`` components, on the freshest evaluation's day (cumulative
    indicators with a value only)."""


@dataclass
class _Latest:
    snapshot: KpiSnapshot
    order: int


@dataclass
class IndicatorBoard:
    """Latest snapshot per (indicator, partition set), and the views derived from them."""

    roadmap: RoadmapFile
    _snapshots: dict[tuple[str, tuple[int, ...]], _Latest] = field(default_factory=dict)
    _arrivals: int = 0

    def __post_init__(self) -> None:
        self._ids = frozenset(i.id for i in self.roadmap.indicators)

    def add(self, snapshot: KpiSnapshot) -> bool:
        """Keep ``snapshot`` if it is for an indicator of this roadmap and not older than the
        snapshot it replaces; False when it was ignored."""
        if snapshot.roadmap != self.roadmap.roadmap or snapshot.indicator not in self._ids:
            return False
        key = (snapshot.indicator, tuple(snapshot.partitions))
        current = self._snapshots.get(key)
        if current is not None and current.snapshot.evaluated_at > snapshot.evaluated_at:
            return False
        self._arrivals += 1
        self._snapshots[key] = _Latest(snapshot, self._arrivals)
        return True

    @property
    def newest_evaluation(self) -> datetime | None:
        """The newest ``evaluated_at`` seen: the roadmap clock when it runs on event time."""
        return max((s.snapshot.evaluated_at for s in self._snapshots.values()), default=None)

    def view(self, indicator_id: str) -> IndicatorView:
        indicator = self.roadmap.indicator(indicator_id)
        names = COMPONENTS[indicator.compute.aggregation]
        mine = [s for (i, _), s in self._snapshots.items() if i == indicator_id]
        if not mine:
            return IndicatorView(None, None, None, 0, 0)
        count = max(s.snapshot.partition_count for s in mine)
        freshest: dict[int, _Latest] = {}
        for latest in mine:
            for partition in latest.snapshot.partitions:
                held = freshest.get(partition)
                if held is None or _newer(latest, held):
                    freshest[partition] = latest
        covered = sorted(p for p in freshest if p < count)
        last_event = max(
            (s.snapshot.last_event_at for s in mine if s.snapshot.last_event_at), default=None
        )
        evaluated = max(s.snapshot.evaluated_at for s in mine)
        if count == 0 or len(covered) < count:
            return IndicatorView(None, last_event, evaluated, len(covered), count)
        totals = [
            sum(
                (_component(freshest[p].snapshot, p, name) for p in covered),
                Decimal(0),
            )
            for name in names
        ]
        value = indicator_value(indicator.compute.aggregation, totals)
        projection = None
        recent = [_component_or_none(freshest[p].snapshot, p, PACE_COMPONENT) for p in covered]
        # A snapshot from before projections carries no pace: no projection rather than a
        # pace of zero, which would look like a target at risk.
        if value is not None and is_projected(indicator) and None not in recent:
            total = sum((r for r in recent if r is not None), Decimal(0))
            projection = project(indicator, value, total, evaluated.date())
        return IndicatorView(value, last_event, evaluated, len(covered), count, projection)

    def views(self) -> dict[str, IndicatorView]:
        return {i.id: self.view(i.id) for i in self.roadmap.indicators}


def _newer(candidate: _Latest, held: _Latest) -> bool:
    a, b = candidate.snapshot.evaluated_at, held.snapshot.evaluated_at
    return a > b or (a == b and candidate.order > held.order)


def _component(snapshot: KpiSnapshot, partition: int, name: str) -> Decimal:
    found = _component_or_none(snapshot, partition, name)
    return Decimal(0) if found is None else found


def _component_or_none(snapshot: KpiSnapshot, partition: int, name: str) -> Decimal | None:
    parts = snapshot.partition_components.get(partition)
    if parts is None:  # a snapshot over one partition may carry only the totals
        parts = snapshot.components if snapshot.partitions == [partition] else {}
    return parts.get(name)
