"""KPI snapshots: when a reading is due, what a snapshot carries, and its key."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from contracts.records import KpiSnapshot
from services.metrics.plan import RoadmapPlan
from services.metrics.readings import Reading
from services.metrics.snapshots import SnapshotPolicy, snapshot_key, snapshot_of
from tests.unit.test_metrics_builders import (
    default_plan,
    hiring,
    reading,
    shipment,
    state_of,
    utc,
)

AT = utc(2025, 6, 15, 12)
INTERVAL = 60.0


@pytest.fixture
def plan() -> RoadmapPlan:
    return default_plan()


def _jobs(plan: RoadmapPlan, jobs: int, at: datetime = AT) -> Reading:
    """jobs_created read at ``at`` over one report of ``jobs`` jobs."""
    state = state_of(plan, [hiring("h-1", "P-1", "2025-03", jobs)])
    return reading(plan, state, "jobs_created", at)


def _published(plan: RoadmapPlan) -> SnapshotPolicy:
    """A policy that published jobs_created = 5 for partition 0 at t=1000 s."""
    policy = SnapshotPolicy(interval_s=INTERVAL)
    policy.published([_jobs(plan, 5)], 1000.0, [0])
    return policy


def test_first_reading_is_due(plan: RoadmapPlan) -> None:
    """Nothing published yet: every reading is due."""
    first = _jobs(plan, 5)
    assert SnapshotPolicy(interval_s=INTERVAL).due([first], 1000.0, [0]) == [first]


@pytest.mark.parametrize(
    ("now_s", "is_due"), [(1000.0, False), (1059.9, False), (1060.0, True), (5000.0, True)]
)
def test_unchanged_reading_is_due_again_only_after_the_interval(
    plan: RoadmapPlan, now_s: float, is_due: bool
) -> None:
    """Published at t=1000 with a 60 s interval: not due before t=1060, due from then on."""
    policy = _published(plan)
    same = _jobs(plan, 5)
    assert policy.due([same], now_s, [0]) == ([same] if is_due else [])


def test_changed_value_is_due_at_once(plan: RoadmapPlan) -> None:
    """A new value (6 jobs instead of 5) is due one second after the last publish."""
    policy = _published(plan)
    changed = _jobs(plan, 6)
    assert policy.due([changed], 1001.0, [0]) == [changed]


def test_a_confirming_event_is_due_at_once(plan: RoadmapPlan) -> None:
    """A re-sent report with the same 5 jobs but a later occurred_at leaves the value alone and
    moves last_event_at: due at once, or a consumer would take the indicator for stale."""
    policy = _published(plan)
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2025-03", 5),
            hiring("h-2", "P-1", "2025-03", 5, occurred_at="2025-05-01T10:00:00Z"),
        ],
    )
    confirmed = reading(plan, state, "jobs_created", AT)
    assert confirmed.value == _jobs(plan, 5).value
    assert policy.due([confirmed], 1001.0, [0]) == [confirmed]


def test_changed_owned_partitions_are_due_at_once(plan: RoadmapPlan) -> None:
    """Same value, but this replica now owns partitions 0 and 1: due at once."""
    policy = _published(plan)
    same = _jobs(plan, 5)
    assert policy.due([same], 1001.0, [0, 1]) == [same]
    assert policy.due([same], 1001.0, []) == [same]


def test_changed_components_with_same_value_are_due(plan: RoadmapPlan) -> None:
    """A share of 10/20 then 20/40: the value (0.5) is the same, the components are not."""
    before = state_of(
        plan,
        [
            shipment("e-1", "S-1", commodity="wheat_flour", value_usd=10),
            shipment("e-2", "S-2", value_usd=10),
        ],
    )
    after = state_of(
        plan,
        [
            shipment("e-1", "S-1", commodity="wheat_flour", value_usd=20),
            shipment("e-2", "S-2", value_usd=20),
        ],
    )
    first = reading(plan, before, "flour_export_share_ratio", AT)
    second = reading(plan, after, "flour_export_share_ratio", AT)
    assert first.value == second.value == Decimal("0.5")
    policy = SnapshotPolicy(interval_s=INTERVAL)
    policy.published([first], 1000.0, [0])
    assert policy.due([second], 1001.0, [0]) == [second]


def test_moving_expected_value_alone_is_not_a_change(plan: RoadmapPlan) -> None:
    """Read a day later, the expected value moved but the value did not: not due yet."""
    policy = _published(plan)
    later = _jobs(plan, 5, utc(2025, 6, 16, 12))
    assert later.expected != _jobs(plan, 5).expected
    assert policy.due([later], 1001.0, [0]) == []


def test_undefined_value_unchanged_is_not_due(plan: RoadmapPlan) -> None:
    """An undefined ratio that stays undefined is not a change."""
    empty = reading(plan, state_of(plan, []), "road_freight_growth_ratio", AT)
    assert empty.value is None
    policy = SnapshotPolicy(interval_s=INTERVAL)
    policy.published([empty], 1000.0, [0])
    assert policy.due([empty], 1001.0, [0]) == []


def test_policy_remembers_each_indicator_separately(plan: RoadmapPlan) -> None:
    """Publishing jobs_created does not make another indicator not due."""
    state = state_of(plan, [hiring("h-1", "P-1", "2025-03", 5)])
    jobs = reading(plan, state, "jobs_created", AT)
    projects = reading(plan, state, "industrial_projects", AT)
    policy = SnapshotPolicy(interval_s=INTERVAL)
    policy.published([jobs], 1000.0, [0])
    assert policy.due([jobs, projects], 1001.0, [0]) == [projects]


def test_snapshot_carries_the_reading_and_partitions(plan: RoadmapPlan) -> None:
    """snapshot_of copies value, expected, target, components and the partitions it covers."""
    s0 = state_of(plan, [hiring("h-1", "P-1", "2025-03", 5, occurred_at="2025-04-02T08:00:00Z")])
    s2 = state_of(plan, [hiring("h-2", "P-2", "2025-04", 7)])
    got = reading(plan, {0: s0, 2: s2}, "jobs_created", AT)
    snapshot = snapshot_of(got, roadmap="kz-by-2025-2029", partitions=[0, 2], partition_count=6)
    assert snapshot.roadmap == "kz-by-2025-2029"
    assert snapshot.indicator == "jobs_created"
    assert snapshot.value == Decimal(12)
    assert snapshot.target == Decimal(1800)
    assert snapshot.expected == got.expected
    assert snapshot.components == {"sum": Decimal(12), "recent": Decimal(12)}
    assert snapshot.partitions == [0, 2]
    assert snapshot.partition_count == 6
    assert snapshot.partition_components == {
        0: {"sum": Decimal(5), "recent": Decimal(5)},
        2: {"sum": Decimal(7), "recent": Decimal(7)},
    }
    assert snapshot.evaluated_at == AT
    assert snapshot.last_event_at == utc(2025, 4, 2, 8)


def test_snapshot_survives_json_with_an_undefined_value(plan: RoadmapPlan) -> None:
    """As published (JSON), a snapshot reads back equal, value None included."""
    empty = reading(plan, {1: state_of(plan, [])}, "flour_export_share_ratio", AT)
    snapshot = snapshot_of(empty, roadmap="kz-by-2025-2029", partitions=[1], partition_count=3)
    back = KpiSnapshot.model_validate_json(snapshot.model_dump_json())
    assert back == snapshot
    assert back.value is None
    assert back.last_event_at is None
    assert back.partition_components == {1: {"numerator": Decimal(0), "denominator": Decimal(0)}}


@pytest.mark.parametrize(
    ("partitions", "key"),
    [
        ([0, 2], b"kz-by-2025-2029/jobs_created/0,2"),
        ([5], b"kz-by-2025-2029/jobs_created/5"),
        ([], b"kz-by-2025-2029/jobs_created/"),
    ],
)
def test_snapshot_key_is_roadmap_indicator_partitions(
    plan: RoadmapPlan, partitions: list[int], key: bytes
) -> None:
    """The key is roadmap/indicator/comma-separated partitions."""
    snapshot = snapshot_of(
        _jobs(plan, 5), roadmap="kz-by-2025-2029", partitions=partitions, partition_count=6
    )
    assert snapshot_key(snapshot) == key
