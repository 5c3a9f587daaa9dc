"""The seven default indicators of deploy/roadmap.yaml, on small cases computed by hand.

Every expected number is worked out in the test from the events listed; nothing is computed
with the code under test.
"""

from __future__ import annotations

import contextlib
import struct
from datetime import datetime
from decimal import Decimal

import pytest

from services.metrics.fold import Applied, apply
from services.metrics.plan import RoadmapPlan
from tests.unit.test_metrics_builders import (
    default_plan,
    hiring,
    milestone,
    outcomes,
    reading,
    shipment,
    state_of,
    utc,
    value,
)

AT = utc(2025, 6, 15, 12)
"""Evaluation time for most cases: mid-June 2025."""


@pytest.fixture
def plan() -> RoadmapPlan:
    return default_plan()


# -- jobs_created ------------------------------------------------------------------------------


def test_jobs_created_sums_latest_report_per_project_and_period(plan: RoadmapPlan) -> None:
    """jobs_created adds one report per (project, period): 10 + 5 + 7 = 22."""
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2025-02", 10),
            hiring("h-2", "P-1", "2025-03", 5),
            hiring("h-3", "P-2", "2025-03", 7),
        ],
    )
    assert value(plan, state, "jobs_created", AT) == Decimal(22)
    # The pace window (180 days back from June 15, from the start on January 1) holds all three.
    assert reading(plan, state, "jobs_created", AT).components == {
        "sum": Decimal(22),
        "recent": Decimal(22),
    }


def test_jobs_created_correction_replaces_the_report(plan: RoadmapPlan) -> None:
    """A later report for the same (project, period) replaces it: 10 + 8 instead of 10 + 5."""
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2025-02", 10),
            hiring("h-2", "P-1", "2025-03", 5, occurred_at="2025-04-01T10:00:00Z"),
        ],
    )
    correction = hiring("h-2-r2", "P-1", "2025-03", 8, occurred_at="2025-04-09T10:00:00Z")
    assert outcomes(state, [correction]) == [Applied.CORRECTION]
    assert value(plan, state, "jobs_created", AT) == Decimal(18)


def test_jobs_created_correction_to_negative_jobs(plan: RoadmapPlan) -> None:
    """A correction to net job losses (-3) is added as negative: 10 + 7 - 3 = 14."""
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2025-02", 10),
            hiring("h-2", "P-1", "2025-03", 5, occurred_at="2025-04-01T10:00:00Z"),
            hiring("h-3", "P-2", "2025-03", 7),
            hiring("h-2-r2", "P-1", "2025-03", -3, occurred_at="2025-04-20T10:00:00Z"),
        ],
    )
    assert value(plan, state, "jobs_created", AT) == Decimal(14)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_jobs_created_tie_on_occurred_at_goes_to_larger_event_id(
    plan: RoadmapPlan, order: tuple[int, int]
) -> None:
    """Two reports with the same occurred_at: the larger event_id ("h-b", 9 jobs) wins."""
    same_time = "2025-04-01T10:00:00Z"
    versions = [
        hiring("h-a", "P-1", "2025-03", 4, occurred_at=same_time),
        hiring("h-b", "P-1", "2025-03", 9, occurred_at=same_time),
    ]
    state = state_of(plan, [versions[i] for i in order])
    assert value(plan, state, "jobs_created", AT) == Decimal(9)


def test_jobs_created_stale_report_is_ignored(plan: RoadmapPlan) -> None:
    """An older version arriving after a newer one is STALE and leaves the sum at the newer 9."""
    state = state_of(
        plan, [hiring("h-new", "P-1", "2025-03", 9, occurred_at="2025-04-10T00:00:00Z")]
    )
    stale = hiring("h-old", "P-1", "2025-03", 4, occurred_at="2025-04-01T00:00:00Z")
    assert outcomes(state, [stale]) == [Applied.STALE]
    assert value(plan, state, "jobs_created", AT) == Decimal(9)


def test_jobs_created_redelivery_is_duplicate(plan: RoadmapPlan) -> None:
    """The same event delivered again is DUPLICATE and is not counted twice."""
    report = hiring("h-1", "P-1", "2025-03", 6)
    state = state_of(plan, [])
    assert outcomes(state, [report, report, report]) == [
        Applied.NEW,
        Applied.DUPLICATE,
        Applied.DUPLICATE,
    ]
    assert value(plan, state, "jobs_created", AT) == Decimal(6)


def test_jobs_created_counts_periods_from_start_to_evaluation_month(plan: RoadmapPlan) -> None:
    """since_start on the period's month: 2024-12 and 2025-07 are out; 2025-01 and 2025-06 in."""
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2024-12", 100),
            hiring("h-2", "P-1", "2025-01", 3),
            hiring("h-3", "P-1", "2025-06", 4),
            hiring("h-4", "P-1", "2025-07", 1000),
        ],
    )
    assert value(plan, state, "jobs_created", AT) == Decimal(7)


# -- industrial_projects and industrial_projects_value_usd ----------------------------------------


def test_industrial_projects_count_and_value_of_live_projects(plan: RoadmapPlan) -> None:
    """Three live projects: count 3, value 100 + 200 + 50.5 = 350.5."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", stage="agreed", investment_usd=100),
            milestone("m-2", "P-2", stage="financed", investment_usd=200),
            milestone("m-3", "P-3", stage="operational", investment_usd="50.5"),
        ],
    )
    assert value(plan, state, "industrial_projects", AT) == Decimal(3)
    assert value(plan, state, "industrial_projects_value_usd", AT) == Decimal("350.5")


def test_cancelled_project_leaves_count_and_value(plan: RoadmapPlan) -> None:
    """P-2 (200) moving to cancelled: count 3 -> 2, value 350.5 -> 150.5."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", stage="agreed", investment_usd=100),
            milestone("m-2", "P-2", stage="financed", investment_usd=200),
            milestone("m-3", "P-3", stage="operational", investment_usd="50.5"),
        ],
    )
    cancel = milestone(
        "m-2-c", "P-2", stage="cancelled", investment_usd=200, occurred_at="2025-05-01T00:00:00Z"
    )
    assert outcomes(state, [cancel]) == [Applied.CORRECTION]
    assert value(plan, state, "industrial_projects", AT) == Decimal(2)
    assert value(plan, state, "industrial_projects_value_usd", AT) == Decimal("150.5")


def test_project_value_follows_latest_investment(plan: RoadmapPlan) -> None:
    """A later milestone with a new investment replaces the old one: 120, not 100 + 120."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", stage="agreed", investment_usd=100),
            milestone(
                "m-1b", "P-1", stage="financed", investment_usd=120, occurred_at="2025-04-01T00:00Z"
            ),
        ],
    )
    assert value(plan, state, "industrial_projects", AT) == Decimal(1)
    assert value(plan, state, "industrial_projects_value_usd", AT) == Decimal(120)


def test_stale_cancellation_does_not_cancel(plan: RoadmapPlan) -> None:
    """A cancellation older than the held milestone is STALE: the project still counts."""
    state = state_of(
        plan,
        [
            milestone(
                "m-1b",
                "P-1",
                stage="construction",
                investment_usd=70,
                occurred_at="2025-05-01T00:00Z",
            )
        ],
    )
    old_cancel = milestone("m-1a", "P-1", stage="cancelled", occurred_at="2025-04-01T00:00Z")
    assert outcomes(state, [old_cancel]) == [Applied.STALE]
    assert value(plan, state, "industrial_projects", AT) == Decimal(1)
    assert value(plan, state, "industrial_projects_value_usd", AT) == Decimal(70)


def test_projects_count_regardless_of_reached_on(plan: RoadmapPlan) -> None:
    """The project indicators use the 'all' window: a project reached in 2024 still counts."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", investment_usd=10, reached_on="2024-11-30"),
            milestone("m-2", "P-2", investment_usd=20, reached_on="2026-01-01"),
        ],
    )
    assert value(plan, state, "industrial_projects", AT) == Decimal(2)
    assert value(plan, state, "industrial_projects_value_usd", AT) == Decimal(30)


# -- joint_ventures_operational -----------------------------------------------------------------


def test_joint_ventures_operational_counts_operational_jvs_only(plan: RoadmapPlan) -> None:
    """Of a JV operational, a JV in construction and a non-JV operational, only the first counts."""
    state = state_of(
        plan,
        [
            milestone("m-1", "JV-1", stage="operational", joint_venture=True),
            milestone("m-2", "JV-2", stage="construction", joint_venture=True),
            milestone("m-3", "P-3", stage="operational", joint_venture=False),
        ],
    )
    assert value(plan, state, "joint_ventures_operational", AT) == Decimal(1)


def test_stage_regression_leaves_joint_ventures_operational(plan: RoadmapPlan) -> None:
    """JV-1 going back from operational to construction drops the count from 2 to 1."""
    state = state_of(
        plan,
        [
            milestone("m-1", "JV-1", stage="operational", joint_venture=True),
            milestone("m-2", "JV-2", stage="operational", joint_venture=True),
        ],
    )
    regression = milestone(
        "m-1b", "JV-1", stage="construction", joint_venture=True, occurred_at="2025-05-01T00:00Z"
    )
    assert outcomes(state, [regression]) == [Applied.CORRECTION]
    assert value(plan, state, "joint_ventures_operational", AT) == Decimal(1)
    # Still a live project: it stays in industrial_projects.
    assert value(plan, state, "industrial_projects", AT) == Decimal(2)


def test_cancelled_joint_venture_is_not_operational(plan: RoadmapPlan) -> None:
    """An operational JV that is then cancelled no longer counts."""
    state = state_of(
        plan,
        [
            milestone("m-1", "JV-1", stage="operational", joint_venture=True),
            milestone(
                "m-1b",
                "JV-1",
                stage="cancelled",
                joint_venture=True,
                occurred_at="2025-05-01T00:00Z",
            ),
        ],
    )
    assert value(plan, state, "joint_ventures_operational", AT) == Decimal(0)


# -- road_freight_tonnes --------------------------------------------------------------------------


def test_road_freight_counts_road_shipments_both_ways_in_window(plan: RoadmapPlan) -> None:
    """KZ<->BY road tonnes from 2025-01-01 to the evaluation day: 10 + 5.5 + 2 + 3 = 20.5."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=10, origin="KZ", destination="BY"),
            shipment("e-2", "S-2", tonnes="5.5", origin="BY", destination="KZ"),
            shipment("e-3", "S-3", tonnes=2, shipped_on="2025-01-01"),
            shipment("e-4", "S-4", tonnes=3, shipped_on="2025-06-15"),
            # Not counted: rail, another corridor, before the start, after the evaluation day.
            shipment("e-5", "S-5", tonnes=100, mode="rail"),
            shipment("e-6", "S-6", tonnes=200, origin="KZ", destination="RU"),
            shipment("e-7", "S-7", tonnes=300, origin="RU", destination="BY"),
            shipment(
                "e-8", "S-8", tonnes=400, origin="BY", destination="KZ", shipped_on="2024-12-31"
            ),
            shipment("e-9", "S-9", tonnes=500, shipped_on="2025-06-16"),
            shipment("e-10", "S-10", tonnes=600, mode="multimodal"),
        ],
    )
    assert value(plan, state, "road_freight_tonnes", AT) == Decimal("20.5")


def test_road_freight_correction_to_rail_removes_the_shipment(plan: RoadmapPlan) -> None:
    """S-1 corrected from road to rail leaves the sum; S-2 corrected from 4 to 6 tonnes replaces."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=10),
            shipment("e-2", "S-2", tonnes=4),
            shipment("e-1b", "S-1", tonnes=10, mode="rail", occurred_at="2025-03-02T00:00Z"),
            shipment("e-2b", "S-2", tonnes=6, occurred_at="2025-03-02T00:00Z"),
        ],
    )
    assert value(plan, state, "road_freight_tonnes", AT) == Decimal(6)


def test_road_freight_correction_of_shipped_on_moves_it_out_of_window(plan: RoadmapPlan) -> None:
    """A correction that re-dates a shipment to 2024-12-30 takes it out of since_start."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=10),
            shipment(
                "e-1b", "S-1", tonnes=10, shipped_on="2024-12-30", occurred_at="2025-03-02T00:00Z"
            ),
        ],
    )
    assert value(plan, state, "road_freight_tonnes", AT) == Decimal(0)


def test_shipment_at_the_contracts_largest_amount_is_folded(plan: RoadmapPlan) -> None:
    """Any valid canonical shipment folds: value_usd at the contract's bound is counted exactly."""
    largest = "999999999999999999.999999"  # Amount: max_digits 24, decimal_places 6
    state = state_of(plan, [])
    big = shipment("e-1", "S-1", commodity="wheat_flour", value_usd=largest)
    assert outcomes(state, [big]) == [Applied.NEW]
    got = reading(plan, state, "flour_export_share_ratio", AT)
    assert got.components == {"numerator": Decimal(largest), "denominator": Decimal(largest)}


def test_correction_that_cannot_be_held_leaves_the_sums_consistent(plan: RoadmapPlan) -> None:
    """A correction to a huge value_usd either applies or changes nothing: road tonnes stay 5."""
    first = shipment("e-1", "S-1", tonnes=5, value_usd=7)
    state = state_of(plan, [first])
    huge = shipment(
        "e-2", "S-1", tonnes=5, value_usd="10000000000000", occurred_at="2025-03-02T00:00Z"
    )
    with contextlib.suppress(struct.error):
        apply(state, huge)
    assert value(plan, state, "road_freight_tonnes", AT) == Decimal(5)


# -- road_freight_growth_ratio -------------------------------------------------------------------


def test_growth_compares_year_to_date_with_the_same_days_last_year(plan: RoadmapPlan) -> None:
    """On 2026-03-10: Jan 1-Mar 10 2026 = 150 + 90 = 240 over Jan 1-Mar 10 2025 = 100 + 100 =
    200: 0.2. Days after March 10 count in neither year, so part of March is never compared
    with the whole of last March."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=100, shipped_on="2025-01-05"),
            shipment(
                "e-2", "S-2", tonnes=100, origin="BY", destination="KZ", shipped_on="2025-03-10"
            ),
            shipment("e-3", "S-3", tonnes=999, shipped_on="2025-03-11"),
            shipment("e-4", "S-4", tonnes=150, shipped_on="2026-02-01"),
            shipment("e-5", "S-5", tonnes=90, shipped_on="2026-03-10"),
            shipment("e-6", "S-6", tonnes=500, shipped_on="2026-03-11"),
            # Not road / not the corridor: out of both windows.
            shipment("e-7", "S-7", tonnes=50, mode="rail", shipped_on="2026-02-01"),
            shipment("e-8", "S-8", tonnes=50, destination="CN", shipped_on="2025-02-01"),
        ],
    )
    got = reading(plan, state, "road_freight_growth_ratio", utc(2026, 3, 10))
    assert got.components == {"current": Decimal(240), "previous": Decimal(200)}
    assert got.value == Decimal("0.2")


def test_growth_in_january_compares_with_previous_january(plan: RoadmapPlan) -> None:
    """On 2026-01-15: Jan 1-15 2026 (60) over Jan 1-15 2025 (50); Jan 16 2025, Feb 1 2025 and
    Dec 31 2025 are out."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=50, shipped_on="2025-01-15"),
            shipment("e-0", "S-0", tonnes=40, shipped_on="2025-01-16"),
            shipment("e-2", "S-2", tonnes=70, shipped_on="2025-02-01"),
            shipment("e-3", "S-3", tonnes=100, shipped_on="2025-12-31"),
            shipment("e-4", "S-4", tonnes=60, shipped_on="2026-01-01"),
        ],
    )
    got = reading(plan, state, "road_freight_growth_ratio", utc(2026, 1, 15))
    assert got.components == {"current": Decimal(60), "previous": Decimal(50)}
    assert got.value == Decimal("0.2")


def test_growth_on_december_31_counts_that_day_in_the_current_year(plan: RoadmapPlan) -> None:
    """On 2025-12-31 23:00: Dec 31 2025 (30) joins 2025 YTD; Dec 31 2024 (40) is the previous."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=40, shipped_on="2024-12-31"),
            shipment("e-2", "S-2", tonnes=30, shipped_on="2025-12-31"),
            shipment("e-3", "S-3", tonnes=20, shipped_on="2026-01-01"),
        ],
    )
    got = reading(plan, state, "road_freight_growth_ratio", utc(2025, 12, 31, 23))
    assert got.components == {"current": Decimal(30), "previous": Decimal(40)}
    assert got.value == Decimal("-0.25")


def test_growth_is_undefined_without_previous_year(plan: RoadmapPlan) -> None:
    """Nothing in the same months of the previous year: value None, components kept."""
    state = state_of(plan, [shipment("e-1", "S-1", tonnes=12, shipped_on="2025-02-01")])
    got = reading(plan, state, "road_freight_growth_ratio", AT)
    assert got.value is None
    assert got.components == {"current": Decimal(12), "previous": Decimal(0)}


# -- flour_export_share_ratio --------------------------------------------------------------------


def test_flour_share_by_value_of_kz_to_by_exports(plan: RoadmapPlan) -> None:
    """Flour 30 over KZ->BY with a value (30 + 70 + 100) = 0.15; no-value and BY->KZ excluded."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", commodity="wheat_flour", value_usd=30),
            shipment("e-2", "S-2", commodity="wheat", value_usd=70),
            shipment("e-3", "S-3", commodity="tractors", mode="rail", value_usd=100),
            # Excluded from both: no value_usd.
            shipment("e-4", "S-4", commodity="wheat_flour", tonnes=1000),
            shipment("e-5", "S-5", commodity="wheat", tonnes=1000),
            # Excluded: the other direction, another destination.
            shipment(
                "e-6", "S-6", commodity="wheat_flour", origin="BY", destination="KZ", value_usd=50
            ),
            shipment("e-7", "S-7", commodity="wheat_flour", destination="RU", value_usd=50),
        ],
    )
    got = reading(plan, state, "flour_export_share_ratio", AT)
    assert got.components == {"numerator": Decimal(30), "denominator": Decimal(200)}
    assert got.value == Decimal("0.15")


def test_flour_share_is_year_to_date(plan: RoadmapPlan) -> None:
    """Only Jan 1-Jun 15 2025 counts on 2025-06-15: flour 10 + 20 over 10 + 20 + 90 = 0.25."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", commodity="wheat_flour", value_usd=10, shipped_on="2025-01-01"),
            shipment("e-2", "S-2", commodity="wheat_flour", value_usd=20, shipped_on="2025-06-15"),
            shipment("e-3", "S-3", commodity="wheat", value_usd=90, shipped_on="2025-03-01"),
            shipment("e-4", "S-4", commodity="wheat_flour", value_usd=500, shipped_on="2024-12-31"),
            shipment("e-5", "S-5", commodity="wheat", value_usd=500, shipped_on="2025-06-16"),
        ],
    )
    got = reading(plan, state, "flour_export_share_ratio", AT)
    assert got.components == {"numerator": Decimal(30), "denominator": Decimal(120)}
    assert got.value == Decimal("0.25")


def test_flour_share_correction_removing_value_leaves_the_share(plan: RoadmapPlan) -> None:
    """A correction without value_usd takes the shipment out of numerator and denominator."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", commodity="wheat_flour", value_usd=25),
            shipment("e-2", "S-2", commodity="wheat", value_usd=75),
            shipment("e-1b", "S-1", commodity="wheat_flour", occurred_at="2025-03-05T00:00Z"),
        ],
    )
    got = reading(plan, state, "flour_export_share_ratio", AT)
    assert got.components == {"numerator": Decimal(0), "denominator": Decimal(75)}
    assert got.value == Decimal(0)


def test_flour_share_is_undefined_when_no_shipment_has_a_value(plan: RoadmapPlan) -> None:
    """Only shipments without value_usd: the denominator is 0 and the share is None."""
    state = state_of(plan, [shipment("e-1", "S-1", commodity="wheat_flour", tonnes=5)])
    got = reading(plan, state, "flour_export_share_ratio", AT)
    assert got.value is None
    assert got.components == {"numerator": Decimal(0), "denominator": Decimal(0)}


# -- expected values ------------------------------------------------------------------------------

# The roadmap runs from 2025-01-01T00:00Z to 2030-01-01T00:00Z: 1826 days (2028 is a leap year).
# 2027-07-03T00:00Z is 365 + 365 + 183 = 913 days in: exactly half way.
HALF_WAY = utc(2027, 7, 3)


@pytest.mark.parametrize(
    ("indicator_id", "at", "expected"),
    [
        ("jobs_created", HALF_WAY, Decimal(900)),
        ("road_freight_tonnes", HALF_WAY, Decimal(1502000)),
        ("joint_ventures_operational", HALF_WAY, Decimal(11)),
        ("road_freight_growth_ratio", HALF_WAY, Decimal("0.19")),
        ("flour_export_share_ratio", AT, Decimal("0.102")),
        # Checkpoint trajectory: 0.5 at 2025-12-31T00:00Z, 0.85 at 2026-12-31T00:00Z.
        ("industrial_projects", utc(2025, 12, 31), Decimal(7)),
        ("industrial_projects_value_usd", utc(2025, 12, 31), Decimal(138750000)),
        # Half way between the checkpoints (182.5 of 365 days): 0.5 + 0.35 / 2 = 0.675.
        ("industrial_projects", utc(2026, 7, 1, 12), Decimal("9.45")),
        ("jobs_created", utc(2024, 12, 31), Decimal(0)),
        ("jobs_created", utc(2030, 1, 1), Decimal(1800)),
    ],
)
def test_expected_follows_the_trajectory(
    plan: RoadmapPlan, indicator_id: str, at: datetime, expected: Decimal
) -> None:
    """expected = baseline + (target - baseline) * progress(at), with hand-computed progress."""
    got = reading(plan, state_of(plan, []), indicator_id, at)
    assert got.expected == expected
    assert got.evaluated_at == at
