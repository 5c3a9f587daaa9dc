"""Where an indicator is heading at its recent pace. Pure arithmetic: callers pass the value, the
sum over the pace window and the day.

The pace is what the indicator gained over its last ``pace_window`` days (180 by default, never
counting days before ``start``), per day. That gain is a sum of the same per-day contributions
as the value, so each partition's share adds up across replicas exactly as the value does
(the ``recent`` component). At that pace:

- the value *projected* at the deadline is ``value + pace * days left``;
- the target is *reached on* the first day the pace carries the value to it (the evaluation day
  when it is already reached; none while the pace is zero or negative).

Only cumulative flows are projected: a ``sum`` or a ``count`` over ``all`` or ``since_start``
of shipments or hiring reports, whose business date (``shipped_on``, the report's month) is the
day the amount happened. Left out, with ``project`` giving None and an outlook of only on track
or behind:
- a share (a ratio of two sums) and a year-on-year growth (a ratio of two years): neither moves
  toward its target at a rate that adds up over partitions or days;
- a ``year_to_date`` sum, which starts again every January;
- a count or sum of projects: a stock, where each project counts on the date of its latest
  milestone, so a project re-confirmed last week would count as recent growth although it was
  signed years ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from contracts.events import EventType
from contracts.roadmap.model import CountOf, Indicator, SumOf, Window

PACE_COMPONENT = "recent"
"""The additive component a projection is made from: the sum over the pace window."""

PROJECTED_WINDOWS = frozenset({Window.ALL, Window.SINCE_START})
FLOWS = frozenset({EventType.TRADE_SHIPMENT, EventType.HIRING_REPORT})
"""Event types whose business date is when their amount happened (not a state's latest date)."""


class Outlook(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    """Not behind yet, but the projection at the deadline falls short by more than the
    tolerance."""
    BEHIND = "behind"


@dataclass(frozen=True, slots=True)
class Projection:
    pace_per_day: Decimal
    projected: Decimal
    """The value at the end of the deadline day, at this pace."""
    reached_on: date | None
    """The day the target is reached at this pace (the evaluation day when already reached);
    None when the pace is zero or negative (or would take past the year 9999) and the target
    is not reached."""


def is_projected(indicator: Indicator) -> bool:
    """True for the cumulative flows: a sum or a count of shipments or hiring reports over
    ``all`` or ``since_start``."""
    compute = indicator.compute
    return (
        isinstance(compute, SumOf | CountOf)
        and compute.window in PROJECTED_WINDOWS
        and compute.event_type in FLOWS
    )


def pace_days(indicator: Indicator, on: date) -> tuple[int, int] | None:
    """The pace window ending on ``on``, as inclusive day ordinals: its last ``pace_window``
    days, none before ``start``. None before the start (no pace yet)."""
    last = on.toordinal()
    first = max(last - indicator.pace_window.days + 1, indicator.start.toordinal())
    return None if first > last else (first, last)


def project(indicator: Indicator, value: Decimal, recent: Decimal, on: date) -> Projection | None:
    """The projection of ``indicator`` from its ``value`` on ``on`` and ``recent``, the sum over
    ``pace_days(indicator, on)``; None for an indicator that is not projected, or before its
    start."""
    days = pace_days(indicator, on)
    if not is_projected(indicator) or days is None:
        return None
    pace = recent / (days[1] - days[0] + 1)
    days_left = max(0, (indicator.deadline - on).days)
    projected = value + pace * days_left
    target = indicator.target
    return Projection(pace, projected, _reached_on(target, value, pace, on))


def _reached_on(target: Decimal, value: Decimal, pace: Decimal, on: date) -> date | None:
    if value >= target:
        return on
    if pace <= 0:
        return None
    days = int(((target - value) / pace).to_integral_value(rounding=ROUND_CEILING))
    if days > date.max.toordinal() - on.toordinal():
        return None  # past the calendar's end: as good as never
    return on + timedelta(days=days)


def outlook(indicator: Indicator, behind: bool, projection: Projection | None) -> Outlook:
    """Behind (its trajectory says so), at risk (the projection at the deadline is short of the
    target by more than the tolerance), or on track."""
    if behind:
        return Outlook.BEHIND
    if projection is not None and is_at_risk(indicator, projection):
        return Outlook.AT_RISK
    return Outlook.ON_TRACK


def is_at_risk(indicator: Indicator, projection: Projection) -> bool:
    """``projected < target * (1 - tolerance)``."""
    return projection.projected < indicator.target * (1 - indicator.tolerance)
