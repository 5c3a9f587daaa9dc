"""An indicator at a moment: its components, value, expected value and freshness. Pure.

Windows are applied here, on the per-day sums the fold keeps: ``all`` takes every day,
``since_start`` the days from the indicator's start to the evaluation day, ``year_to_date`` the
days from January 1 to the evaluation day (and, for growth, the same days a year earlier).
Components are added across partitions before any ratio is taken.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from contracts.roadmap.components import COMPONENTS, indicator_value
from contracts.roadmap.model import Indicator, Window
from contracts.roadmap.projection import (
    PACE_COMPONENT,
    Outlook,
    Projection,
    is_projected,
    outlook,
    pace_days,
    project,
)
from contracts.roadmap.trajectory import TargetTrajectory
from services.metrics.entities import from_micro, from_timestamp_us
from services.metrics.fold import PartitionState
from services.metrics.plan import IndicatorPlan, Kind

DayRange = tuple[int, int] | None
"""Inclusive day ordinals; ``None`` for every day."""


@dataclass(frozen=True, slots=True)
class Reading:
    indicator: Indicator
    evaluated_at: datetime
    value: Decimal | None
    expected: Decimal
    components: dict[str, Decimal]
    partition_components: dict[int, dict[str, Decimal]]
    last_event_at: datetime | None
    projection: Projection | None = None
    """At the pace of the last ``pace_window`` days (the projected flows only)."""

    @property
    def target(self) -> Decimal:
        return self.indicator.target

    @property
    def outlook(self) -> Outlook | None:
        """On track, at risk or behind; None while the value is undefined."""
        if self.value is None:
            return None
        behind = TargetTrajectory(self.indicator).is_behind(self.value, self.evaluated_at)
        return outlook(self.indicator, behind, self.projection)

    @property
    def progress(self) -> Decimal | None:
        """``value / target`` (None when either is missing or the target is 0)."""
        if self.value is None or not self.indicator.target:
            return None
        return self.value / self.indicator.target


def _same_day(on: date, year: int) -> date:
    """``on``'s month and day in ``year`` (29 February becomes the 28th)."""
    day = min(on.day, calendar.monthrange(year, on.month)[1])
    return date(year, on.month, day)


def year_to_date(on: date, *, years_back: int = 0) -> tuple[int, int]:
    """January 1 to ``on``, or to the same day ``years_back`` years earlier.

    Equal spans, so a growth is never understated by comparing part of this month with the
    whole of the same month a year ago.
    """
    year = on.year - years_back
    return date(year, 1, 1).toordinal(), _same_day(on, year).toordinal()


def window_days(window: Window, indicator: Indicator, on: date, *, as_of: bool = False) -> DayRange:
    """The business days ``window`` covers on ``on``; with ``as_of``, ``all`` stops at ``on``
    too (the value as it stood at the end of that day, for history)."""
    if window is Window.ALL:
        return (1, on.toordinal()) if as_of else None
    if window is Window.SINCE_START:
        return indicator.start.toordinal(), on.toordinal()
    return year_to_date(on)


def _sum(buckets: Mapping[int, int], days: DayRange) -> int:
    if days is None:
        return sum(buckets.values())
    low, high = days
    return sum(amount for day, amount in buckets.items() if low <= day <= high)


def component_names(plan: IndicatorPlan) -> tuple[str, ...]:
    """``COMPONENTS`` of the indicator's kind, then ``recent`` (the pace window's sum) for an
    indicator that is projected."""
    names = COMPONENTS[plan.kind]
    return (*names, PACE_COMPONENT) if is_projected(plan.indicator) else names


def partition_components(
    plan: IndicatorPlan, state: PartitionState, on: date, *, as_of: bool = False
) -> list[int]:
    """The indicator's components (millionths) from one partition, in ``component_names``
    order; ``as_of``: no business day after ``on`` counts (see ``window_days``)."""
    if plan.kind == "yoy_growth":
        (slot,) = plan.slots
        return [
            _sum(state.buckets[slot], year_to_date(on)),
            _sum(state.buckets[slot], year_to_date(on, years_back=1)),
        ]
    days = window_days(plan.window, plan.indicator, on, as_of=as_of)
    parts = [_sum(state.buckets[slot], days) for slot in plan.slots]
    if is_projected(plan.indicator):
        (slot,) = plan.slots
        pace = pace_days(plan.indicator, on)
        parts.append(0 if pace is None else _sum(state.buckets[slot], pace))
    return parts


def value_of(kind: Kind, components: list[int]) -> Decimal | None:
    """The indicator's value from summed components (millionths); ``None`` for a ratio over 0."""
    return indicator_value(kind, [from_micro(c) for c in components])


def read(plan: IndicatorPlan, states: Mapping[int, PartitionState], at: datetime) -> Reading:
    """The indicator over every partition in ``states``, evaluated at ``at``."""
    on = at.date()
    names = component_names(plan)
    per_partition = {p: partition_components(plan, s, on) for p, s in sorted(states.items())}
    totals = [sum(parts[i] for parts in per_partition.values()) for i in range(len(names))]
    newest = max(
        (s.slot_last_event_us[slot] for s in states.values() for slot in plan.slots), default=0
    )
    value = value_of(plan.kind, totals[: len(COMPONENTS[plan.kind])])
    return Reading(
        indicator=plan.indicator,
        evaluated_at=at,
        value=value,
        expected=TargetTrajectory(plan.indicator).expected(at),
        components={n: from_micro(v) for n, v in zip(names, totals, strict=True)},
        partition_components={
            p: {n: from_micro(v) for n, v in zip(names, parts, strict=True)}
            for p, parts in per_partition.items()
        },
        last_event_at=from_timestamp_us(newest) if newest else None,
        projection=projection_of(plan.indicator, value, totals, names, on),
    )


def projection_of(
    indicator: Indicator,
    value: Decimal | None,
    totals: list[int],
    names: tuple[str, ...],
    on: date,
) -> Projection | None:
    if value is None or PACE_COMPONENT not in names:
        return None
    return project(indicator, value, from_micro(totals[names.index(PACE_COMPONENT)]), on)


def event_clock(states: Mapping[int, PartitionState]) -> datetime | None:
    """The newest ``occurred_at`` folded so far (the clock for replays), if any."""
    newest = max((s.newest_event_us for s in states.values()), default=0)
    return from_timestamp_us(newest) if newest else None
