"""TargetTrajectory: progress, expected value and shortfall, computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from contracts.roadmap import Indicator, TargetTrajectory

# 2025-01-01 .. 2025-01-10: the path runs from 2025-01-01T00:00Z to 2025-01-11T00:00Z (10 days).
BEGIN = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 1, 11, tzinfo=UTC)
CHECKPOINTS = [
    {"date": "2025-01-03", "progress": "0.5"},
    {"date": "2025-01-07", "progress": "0.75"},
]


def _indicator(**overrides: Any) -> Indicator:
    fields: dict[str, Any] = {
        "id": "jobs_created",
        "title": "Jobs",
        "unit": "jobs",
        "compute": {
            "aggregation": "sum",
            "event_type": "hiring.report",
            "field": "jobs_created",
        },
        "baseline": "100",
        "target": "300",
        "start": "2025-01-01",
        "deadline": "2025-01-10",
        "trajectory": "linear",
        "tolerance": "0.1",
        "severity": "warning",
        "owner": "industry-office",
        "runbook": "docs/runbooks.md#jobs_created",
    }
    fields.update(overrides)
    return Indicator.model_validate(fields)


@pytest.fixture
def linear() -> TargetTrajectory:
    return TargetTrajectory(_indicator())


@pytest.fixture
def stepped() -> TargetTrajectory:
    return TargetTrajectory(_indicator(trajectory={"checkpoints": CHECKPOINTS}))


def _day(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, tzinfo=UTC)


def test_path_runs_from_start_of_start_day_to_end_of_deadline_day(linear: TargetTrajectory) -> None:
    """begins_at is the start day at 00:00 UTC; ends_at is the day after the deadline, 00:00 UTC."""
    assert linear.begins_at == BEGIN
    assert linear.ends_at == END


@pytest.mark.parametrize("at", [BEGIN - timedelta(days=400), BEGIN - timedelta(seconds=1), BEGIN])
def test_progress_is_zero_until_the_start(linear: TargetTrajectory, at: datetime) -> None:
    """Before (and at) the start, nothing is expected yet: progress 0, expected = baseline."""
    assert linear.progress(at) == 0
    assert linear.expected(at) == Decimal(100)


@pytest.mark.parametrize("at", [END, END + timedelta(seconds=1), END + timedelta(days=900)])
def test_progress_is_one_after_the_deadline_day(linear: TargetTrajectory, at: datetime) -> None:
    """From the end of the deadline day on, progress is 1 and expected = target."""
    assert linear.progress(at) == 1
    assert linear.expected(at) == Decimal(300)


def test_deadline_day_itself_is_not_yet_complete(linear: TargetTrajectory) -> None:
    """At noon on the deadline day, progress is 0.95: the target is due by the day's end."""
    assert linear.progress(_day(10, 12)) == Decimal("0.95")


@pytest.mark.parametrize(
    ("at", "progress", "expected"),
    [
        (_day(6), Decimal("0.5"), Decimal(200)),
        (_day(2), Decimal("0.1"), Decimal(120)),
        (_day(3, 12), Decimal("0.25"), Decimal(150)),
        (_day(9), Decimal("0.8"), Decimal(260)),
    ],
)
def test_linear_progress_and_expected(
    linear: TargetTrajectory, at: datetime, progress: Decimal, expected: Decimal
) -> None:
    """Linear progress is elapsed/total; expected = 100 + 200 * progress."""
    assert linear.progress(at) == progress
    assert linear.expected(at) == expected


def test_progress_reads_the_instant_not_the_wall_clock(linear: TargetTrajectory) -> None:
    """A time given with an offset is the same instant as its UTC form."""
    plus_six = datetime(2025, 1, 6, 12, tzinfo=timezone(timedelta(hours=6)))  # 06:00 UTC
    assert linear.progress(plus_six) == Decimal("0.525")


def test_expected_falls_when_the_target_is_below_the_baseline() -> None:
    """A decreasing target (baseline 50, target 10) is expected at 30 halfway."""
    trajectory = TargetTrajectory(_indicator(baseline="50", target="10"))
    assert trajectory.expected(_day(6)) == Decimal(30)


def test_flat_target_expects_the_same_value_throughout() -> None:
    """When baseline equals target, expected is that value at any time."""
    trajectory = TargetTrajectory(_indicator(baseline="11", target="11"))
    for at in (BEGIN, _day(4), END):
        assert trajectory.expected(at) == Decimal(11)


@pytest.mark.parametrize(
    ("at", "progress"),
    [
        (_day(2), Decimal("0.25")),  # halfway to the first checkpoint (0 -> 0.5)
        (_day(3), Decimal("0.5")),  # on the first checkpoint
        (_day(5), Decimal("0.625")),  # halfway between the checkpoints (0.5 -> 0.75)
        (_day(7), Decimal("0.75")),  # on the second checkpoint
        (_day(9), Decimal("0.875")),  # halfway from it to the end (0.75 -> 1)
        (_day(10), Decimal("0.9375")),  # three quarters of the way to the end
    ],
)
def test_checkpoints_interpolate_piecewise_linearly(
    stepped: TargetTrajectory, at: datetime, progress: Decimal
) -> None:
    """Between checkpoints, progress moves linearly from one checkpoint's value to the next."""
    assert stepped.progress(at) == progress
    assert stepped.expected(at) == 100 + 200 * progress


def test_checkpoint_trajectory_has_the_same_ends(stepped: TargetTrajectory) -> None:
    """A checkpoint trajectory is still 0 at the start and 1 from the end of the deadline day."""
    assert stepped.progress(BEGIN) == 0
    assert stepped.progress(END) == 1
    assert stepped.progress(END + timedelta(days=1)) == 1


def test_is_behind_only_below_the_tolerance_band(linear: TargetTrajectory) -> None:
    """At the midpoint (expected 200, tolerance 0.1) the bound is 180: below it is behind."""
    at = _day(6)
    assert linear.is_behind(Decimal("179.999"), at)
    assert not linear.is_behind(Decimal(180), at)
    assert not linear.is_behind(Decimal("180.000"), at)
    assert not linear.is_behind(Decimal(200), at)
    assert not linear.is_behind(Decimal(500), at)


def test_zero_tolerance_is_behind_below_expected() -> None:
    """With tolerance 0, anything under the expected value is behind and the value itself is not."""
    trajectory = TargetTrajectory(_indicator(tolerance="0"))
    at = _day(6)
    assert trajectory.is_behind(Decimal("199.99"), at)
    assert not trajectory.is_behind(Decimal(200), at)


def test_nothing_is_behind_before_the_start_at_baseline(linear: TargetTrajectory) -> None:
    """Before the start, an actual at the baseline is not behind; below 90 is."""
    assert not linear.is_behind(Decimal(100), BEGIN)
    assert not linear.is_behind(Decimal(90), BEGIN)
    assert linear.is_behind(Decimal("89.9"), BEGIN)
