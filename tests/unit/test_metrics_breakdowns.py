"""Domain breakdowns kept by the fold: freight rows, projects by stage, jobs by sector.

Amounts in the state are millionths (1 tonne = 1_000_000); expected rows are written that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import pytest

from services.metrics.fold import BreakdownLabels, apply, jobs_by_sector
from services.metrics.plan import RoadmapPlan
from tests.unit.test_metrics_builders import (
    LABELS,
    default_plan,
    hiring,
    milestone,
    shipment,
    state_of,
)

M = 1_000_000
K = TypeVar("K")


@pytest.fixture
def plan() -> RoadmapPlan:
    return default_plan()


def _rows(table: Mapping[K, list[int]]) -> dict[K, list[int]]:
    """The table without all-zero rows (keys that once held something)."""
    return {key: row for key, row in table.items() if any(row)}


@pytest.mark.parametrize(
    ("origin", "destination", "label"),
    [
        ("KZ", "BY", "KZ_to_BY"),
        ("BY", "KZ", "BY_to_KZ"),
        ("RU", "CN", "other"),
        ("KZ", "RU", "other"),
        ("BY", "BY", "other"),
    ],
)
def test_direction_labels(origin: str, destination: str, label: str) -> None:
    """The corridor's two directions are named; any other pair of countries is 'other'."""
    assert LABELS.direction(origin, destination) == label


def test_direction_follows_the_configured_corridor() -> None:
    """With corridor (KZ, RU), KZ->RU is labelled and KZ->BY becomes 'other'."""
    labels = BreakdownLabels(corridor=("KZ", "RU"))
    assert labels.direction("KZ", "RU") == "KZ_to_RU"
    assert labels.direction("RU", "KZ") == "RU_to_KZ"
    assert labels.direction("KZ", "BY") == "other"


def test_freight_rows_by_direction_mode_and_commodity(plan: RoadmapPlan) -> None:
    """Rows hold [shipments, tonnes, value_usd]; unlisted commodities fold into 'other'."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes="2.5", commodity="wheat_flour", value_usd=100),
            shipment("e-2", "S-2", tonnes=4, commodity="wheat_flour", value_usd="0.5"),
            shipment(
                "e-3",
                "S-3",
                tonnes=7,
                origin="BY",
                destination="KZ",
                mode="rail",
                commodity="tractors",
            ),
            shipment(
                "e-4", "S-4", tonnes=1, origin="RU", destination="CN", commodity="salt", value_usd=3
            ),
            shipment(
                "e-5", "S-5", tonnes=2, origin="CN", destination="RU", commodity="coal", value_usd=4
            ),
        ],
    )
    assert _rows(state.freight) == {
        ("KZ_to_BY", "road", "wheat_flour"): [2, 6_500_000, 100_500_000],
        ("BY_to_KZ", "rail", "tractors"): [1, 7 * M, 0],
        ("other", "road", "other"): [2, 3 * M, 7 * M],
    }


def test_freight_correction_moves_the_shipment_to_its_new_row(plan: RoadmapPlan) -> None:
    """Corrected from road to rail, the shipment leaves the road row (now all zeros)."""
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=3, value_usd=9),
            shipment(
                "e-1b", "S-1", tonnes=5, mode="rail", value_usd=9, occurred_at="2025-03-02T00:00Z"
            ),
        ],
    )
    assert state.freight[("KZ_to_BY", "road", "wheat")] == [0, 0, 0]
    assert _rows(state.freight) == {("KZ_to_BY", "rail", "wheat"): [1, 5 * M, 9 * M]}


def test_projects_by_stage_follows_stage_changes(plan: RoadmapPlan) -> None:
    """[projects, investment] per latest stage: P-1 agreed -> financed -> cancelled."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", stage="agreed", investment_usd=10),
            milestone("m-2", "P-2", stage="agreed", investment_usd=20),
        ],
    )
    assert _rows(state.projects_by_stage) == {"agreed": [2, 30 * M]}
    apply(
        state,
        milestone(
            "m-1b", "P-1", stage="financed", investment_usd=12, occurred_at="2025-04-01T00:00Z"
        ),
    )
    assert _rows(state.projects_by_stage) == {"agreed": [1, 20 * M], "financed": [1, 12 * M]}
    apply(
        state,
        milestone(
            "m-1c", "P-1", stage="cancelled", investment_usd=12, occurred_at="2025-05-01T00:00Z"
        ),
    )
    assert _rows(state.projects_by_stage) == {"agreed": [1, 20 * M], "cancelled": [1, 12 * M]}


def test_jobs_by_sector_joins_hiring_with_latest_milestone(plan: RoadmapPlan) -> None:
    """Jobs go to the sector of the project's latest milestone; listed sectors keep their name."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="food_processing"),
            milestone("m-2", "P-2", sector="agricultural_machinery"),
            hiring("h-1", "P-1", "2025-02", 10),
            hiring("h-2", "P-1", "2025-03", -4),
            hiring("h-3", "P-2", "2025-03", 5),
        ],
    )
    assert jobs_by_sector(state) == {"food_processing": 6 * M, "agricultural_machinery": 5 * M}


def test_jobs_before_any_milestone_are_unknown_then_join(plan: RoadmapPlan) -> None:
    """Hiring for a project with no milestone yet is 'unknown'; its first milestone claims it."""
    report = hiring("h-1", "P-1", "2025-02", 8)
    state = state_of(plan, [report])
    assert jobs_by_sector(state) == {"unknown": 8 * M}
    state = state_of(plan, [report, milestone("m-1", "P-1", sector="food_processing")])
    assert jobs_by_sector(state) == {"food_processing": 8 * M}


def test_jobs_in_unlisted_sector_are_other(plan: RoadmapPlan) -> None:
    """A sector missing from the configured list ('mining') is reported as 'other'."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="mining"),
            milestone("m-2", "P-2", sector="textiles"),
            hiring("h-1", "P-1", "2025-02", 3),
            hiring("h-2", "P-2", "2025-02", 4),
        ],
    )
    assert jobs_by_sector(state) == {"other": 7 * M}


def test_jobs_move_with_a_sector_correction(plan: RoadmapPlan) -> None:
    """A later milestone that changes the project's sector moves all its jobs there."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="food_processing"),
            hiring("h-1", "P-1", "2025-02", 3),
            milestone(
                "m-1b", "P-1", sector="agricultural_machinery", occurred_at="2025-06-01T00:00Z"
            ),
        ],
    )
    assert jobs_by_sector(state) == {"agricultural_machinery": 3 * M}


def test_jobs_by_sector_counts_latest_report_only(plan: RoadmapPlan) -> None:
    """A corrected report is counted once, at its corrected value: 2 (was 20)."""
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="food_processing"),
            hiring("h-1", "P-1", "2025-02", 20),
            hiring("h-1b", "P-1", "2025-02", 2, occurred_at="2025-05-01T00:00Z"),
        ],
    )
    assert jobs_by_sector(state) == {"food_processing": 2 * M}
