"""Where an indicator should be at a given moment, and whether it is behind.

Pure arithmetic on an ``Indicator``: no clock is read here; callers pass the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise

from contracts.roadmap.model import CheckpointTrajectory, Indicator


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _share_between(at: datetime, begin: datetime, end: datetime) -> Decimal:
    span = (end - begin).total_seconds()
    done = (at - begin).total_seconds()
    return Decimal(str(done)) / Decimal(str(span))


@dataclass(frozen=True, slots=True)
class TargetTrajectory:
    """The path from ``baseline`` (start of ``start``) to ``target`` (end of ``deadline``)."""

    indicator: Indicator

    @property
    def begins_at(self) -> datetime:
        return _start_of(self.indicator.start)

    @property
    def ends_at(self) -> datetime:
        """The end of the deadline day: the target is due by then."""
        return _start_of(self.indicator.deadline + timedelta(days=1))

    def progress(self, at: datetime) -> Decimal:
        """Share (0-1) of the way from baseline to target that should be done at ``at``."""
        begin, end = self.begins_at, self.ends_at
        if at <= begin:
            return Decimal(0)
        if at >= end:
            return Decimal(1)
        trajectory = self.indicator.trajectory
        if not isinstance(trajectory, CheckpointTrajectory):
            return _share_between(at, begin, end)
        points = [(begin, Decimal(0))]
        points += [(_start_of(c.date), c.progress) for c in trajectory.checkpoints]
        points.append((end, Decimal(1)))
        for (t0, p0), (t1, p1) in pairwise(points):
            if t0 <= at < t1:
                return p0 + (p1 - p0) * _share_between(at, t0, t1)
        return Decimal(1)

    def expected(self, at: datetime) -> Decimal:
        """``baseline + (target - baseline) * progress(at)`` (DESIGN section 4)."""
        baseline, target = self.indicator.baseline, self.indicator.target
        return baseline + (target - baseline) * self.progress(at)

    def is_behind(self, actual: Decimal, at: datetime) -> bool:
        """True when ``actual < expected * (1 - tolerance)``: a shortfall worth an alert."""
        return actual < self.expected(at) * (1 - self.indicator.tolerance)
