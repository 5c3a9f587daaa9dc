"""An indicator's history: month ends, values as of each, the trajectory, and replicas' parts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from contracts.history import month_ends
from services.metrics.history import history
from tests.unit.test_metrics_builders import default_plan, hiring, milestone, state_of, utc

PLAN = default_plan()
AT = utc(2025, 4, 15, 12)


def test_month_ends_run_to_the_day_in_progress() -> None:
    assert month_ends(date(2024, 11, 20), date(2025, 2, 10)) == [
        date(2024, 11, 30),
        date(2024, 12, 31),
        date(2025, 1, 31),
        date(2025, 2, 10),
    ]
    assert month_ends(date(2024, 2, 1), date(2024, 3, 31)) == [date(2024, 2, 29), date(2024, 3, 31)]
    assert month_ends(date(2025, 5, 5), date(2025, 5, 5)) == [date(2025, 5, 5)]


def test_jobs_month_by_month_over_two_partitions() -> None:
    """Reports: January 10 (partition 0), February 5 and 7 (0 and 1), April 3 (1): the value
    since the start is 10, 22, 22 and 25 at the ends of January, February, March and on April
    15. The trajectory runs 0 -> 1,800 over 2025-01-01 .. 2029-12-31 (1,826 days): at the end
    of January, 31 days in, 1,800 * 31 / 1826; on April 15 at 12:00 (the last point is the
    evaluation time itself), 104.5 days in."""
    s0 = state_of(PLAN, [hiring("h-1", "P-1", "2025-01", 10), hiring("h-2", "P-1", "2025-02", 5)])
    s1 = state_of(PLAN, [hiring("h-3", "P-2", "2025-02", 7), hiring("h-4", "P-2", "2025-04", 3)])
    answer = history(
        PLAN.indicator("jobs_created"), {0: s0, 1: s1}, AT, roadmap="r", partition_count=2
    )
    assert (answer.indicator, answer.step, answer.partitions, answer.partition_count) == (
        "jobs_created",
        "month",
        [0, 1],
        2,
    )
    assert [(p.on, p.value) for p in answer.points] == [
        (date(2025, 1, 31), Decimal(10)),
        (date(2025, 2, 28), Decimal(22)),
        (date(2025, 3, 31), Decimal(22)),
        (date(2025, 4, 15), Decimal(25)),
    ]
    january = answer.points[0]
    assert january.expected == Decimal(1800) * (Decimal(31) / Decimal(1826))
    assert answer.points[-1].expected == Decimal(1800) * (Decimal("104.5") / Decimal(1826))
    assert january.partition_components == {
        0: {"sum": Decimal(10), "recent": Decimal(10)},
        1: {"sum": Decimal(0), "recent": Decimal(0)},
    }
    assert answer.points[-1].components == {"sum": Decimal(25), "recent": Decimal(25)}


def test_an_all_time_count_counts_no_day_after_each_point() -> None:
    """industrial_projects (window all): a project reached on 2025-03-02 counts from March on,
    and one dated after the evaluation day (2025-06-01) not even on April 15."""
    state = state_of(
        PLAN,
        [
            milestone("m-1", "P-1", reached_on="2025-03-02"),
            milestone("m-2", "P-2", reached_on="2025-06-01"),
        ],
    )
    answer = history(
        PLAN.indicator("industrial_projects"), {0: state}, AT, roadmap="r", partition_count=1
    )
    assert [p.value for p in answer.points] == [Decimal(0), Decimal(0), Decimal(1), Decimal(1)]


def test_a_ratio_s_history_takes_the_ratio_of_each_point_s_sums() -> None:
    """No KZ->BY export value yet: the share is undefined (None) at every point."""
    answer = history(
        PLAN.indicator("flour_export_share_ratio"),
        {0: state_of(PLAN, [])},
        AT,
        roadmap="r",
        partition_count=1,
    )
    assert {p.value for p in answer.points} == {None}
    assert answer.points[0].components == {"numerator": Decimal(0), "denominator": Decimal(0)}
