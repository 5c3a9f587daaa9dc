"""RoadmapCollector in a fresh CollectorRegistry: the scorecard and the bounded breakdowns.

The evaluation time is 2027-07-03T00:00Z, exactly half way through the roadmap (913 of 1826
days), so a linear indicator's expected value is the middle of its baseline and target.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from contracts.events import ProjectStage, TransportMode
from contracts.keys import AnyEvent
from services.metrics.exporter import RoadmapCollector
from services.metrics.fold import PartitionState, apply
from services.metrics.plan import RoadmapPlan
from services.metrics.readings import event_clock
from tests.unit.test_metrics_builders import (
    DEFAULT_IDS,
    LABELS,
    default_plan,
    hiring,
    milestone,
    shipment,
    state_of,
    utc,
)

AT = utc(2027, 7, 3)
DEADLINE_TS = 1893456000.0  # 2030-01-01T00:00:00Z: the end of the deadline day 2029-12-31
ROAD_SHIPPED_AT = "2027-07-01T09:00:00Z"
# 2027-01-01 is 1798761600; plus 181 days (Jan-Jun) and 9 hours.
ROAD_SHIPPED_TS = 1798761600.0 + 181 * 86400 + 9 * 3600
HIRED_AT = "2025-03-01T10:00:00Z"
HIRED_TS = 1740823200.0
IDS = ("S-ROAD", "S-RAIL", "S-ELSEWHERE", "JV-1", "P-2", "P-9")

PROJECT_EVENTS: list[AnyEvent] = [
    milestone(
        "m-1",
        "JV-1",
        stage="operational",
        joint_venture=True,
        investment_usd=100,
        sector="agricultural_machinery",
        occurred_at="2025-02-15T07:00:00Z",
    ),
    milestone("m-2", "P-2", stage="cancelled", investment_usd=50, sector="mining"),
    hiring("h-1", "JV-1", "2025-02", 450, occurred_at=HIRED_AT),
    hiring("h-2", "P-2", "2025-03", -10, occurred_at="2025-02-01T00:00:00Z"),
    hiring("h-3", "P-9", "2025-04", 10, occurred_at="2025-02-01T00:00:00Z"),
]
SHIPMENT_EVENTS: list[AnyEvent] = [
    shipment(
        "e-1",
        "S-ROAD",
        tonnes=10,
        commodity="wheat_flour",
        value_usd=30,
        shipped_on="2027-07-01",
        occurred_at=ROAD_SHIPPED_AT,
    ),
    shipment(
        "e-2",
        "S-RAIL",
        tonnes=5,
        origin="BY",
        destination="KZ",
        mode="rail",
        commodity="tractors",
        shipped_on="2027-06-01",
        occurred_at="2027-06-01T00:00:00Z",
    ),
    shipment(
        "e-3",
        "S-ELSEWHERE",
        tonnes=2,
        origin="RU",
        destination="CN",
        commodity="salt",
        value_usd=4,
        shipped_on="2027-06-01",
        occurred_at="2027-06-01T00:00:00Z",
    ),
]


@pytest.fixture
def plan() -> RoadmapPlan:
    return default_plan()


def _registry(
    plan: RoadmapPlan, states: Mapping[int, PartitionState], at: datetime = AT
) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(RoadmapCollector(plan, states, lambda _states: at))
    return registry


@pytest.fixture
def registry(plan: RoadmapPlan) -> CollectorRegistry:
    """Projects and their hiring in partition 0, shipments in partition 1."""
    states = {0: state_of(plan, PROJECT_EVENTS), 1: state_of(plan, SHIPMENT_EVENTS)}
    return _registry(plan, states)


def _indicator(registry: CollectorRegistry, name: str, indicator_id: str) -> float | None:
    return registry.get_sample_value(name, {"indicator": indicator_id})


@pytest.mark.parametrize(
    ("indicator_id", "value", "target", "expected", "progress"),
    [
        # 450 - 10 + 10 jobs; linear 0 -> 1800, half way.
        ("jobs_created", 450.0, 1800.0, 900.0, 0.25),
        # Flat trajectory at 11; one operational JV.
        ("joint_ventures_operational", 1.0, 11.0, 11.0, 1 / 11),
        # 10 t of KZ<->BY road freight; linear 0 -> 3,004,000 t, half way.
        ("road_freight_tonnes", 10.0, 3004000.0, 1502000.0, 10 / 3004000),
        # Flour 30 of 30 USD exported KZ->BY this year.
        ("flour_export_share_ratio", 1.0, 0.102, 0.102, 1 / 0.102),
    ],
)
def test_scorecard_series(
    registry: CollectorRegistry,
    indicator_id: str,
    value: float,
    target: float,
    expected: float,
    progress: float,
) -> None:
    """value, target, expected and progress_ratio per indicator, with hand-computed numbers."""
    assert _indicator(registry, "roadmap_indicator_value", indicator_id) == value
    assert _indicator(registry, "roadmap_indicator_target", indicator_id) == target
    assert _indicator(registry, "roadmap_indicator_expected", indicator_id) == pytest.approx(
        expected, rel=1e-12
    )
    assert _indicator(registry, "roadmap_indicator_progress_ratio", indicator_id) == pytest.approx(
        progress, rel=1e-12
    )


def test_project_indicators_count_live_projects(registry: CollectorRegistry) -> None:
    """One live project (JV-1, USD 100); the cancelled P-2 is left out."""
    assert _indicator(registry, "roadmap_indicator_value", "industrial_projects") == 1.0
    assert _indicator(registry, "roadmap_indicator_value", "industrial_projects_value_usd") == 100.0
    assert _indicator(registry, "roadmap_indicator_target", "industrial_projects") == 14.0


@pytest.mark.parametrize("indicator_id", DEFAULT_IDS)
def test_deadline_is_end_of_the_deadline_day(
    registry: CollectorRegistry, indicator_id: str
) -> None:
    """Every default indicator's deadline 2029-12-31 is exposed as 2030-01-01T00:00Z."""
    assert (
        _indicator(registry, "roadmap_indicator_deadline_timestamp_seconds", indicator_id)
        == DEADLINE_TS
    )


@pytest.mark.parametrize(
    ("indicator_id", "timestamp"),
    [
        ("jobs_created", HIRED_TS),
        ("industrial_projects", 1739602800.0),  # JV-1's milestone, 2025-02-15T07:00Z
        ("road_freight_tonnes", ROAD_SHIPPED_TS),
        ("road_freight_growth_ratio", ROAD_SHIPPED_TS),
        ("flour_export_share_ratio", ROAD_SHIPPED_TS),
    ],
)
def test_last_event_timestamp_is_newest_event_that_changed_the_indicator(
    registry: CollectorRegistry, indicator_id: str, timestamp: float
) -> None:
    """last_event_timestamp_seconds is the occurred_at of the newest event counted in it."""
    assert (
        _indicator(registry, "roadmap_indicator_last_event_timestamp_seconds", indicator_id)
        == timestamp
    )


def test_undefined_ratio_has_no_value_sample(registry: CollectorRegistry) -> None:
    """Growth with nothing a year earlier: no value and no progress, but target and expected."""
    assert _indicator(registry, "roadmap_indicator_value", "road_freight_growth_ratio") is None
    assert (
        _indicator(registry, "roadmap_indicator_progress_ratio", "road_freight_growth_ratio")
        is None
    )
    assert _indicator(registry, "roadmap_indicator_target", "road_freight_growth_ratio") == 0.19
    assert _indicator(registry, "roadmap_indicator_expected", "road_freight_growth_ratio") == 0.19
    assert (
        registry.get_sample_value(
            "roadmap_indicator_component",
            {"indicator": "road_freight_growth_ratio", "component": "current"},
        )
        == 10.0
    )


def test_no_data_yet_has_no_last_event_sample(plan: RoadmapPlan) -> None:
    """With no events at all, sums read 0 and there is no freshness sample."""
    registry = _registry(plan, {0: PartitionState(plan, LABELS)})
    assert _indicator(registry, "roadmap_indicator_value", "jobs_created") == 0.0
    assert (
        _indicator(registry, "roadmap_indicator_last_event_timestamp_seconds", "jobs_created")
        is None
    )


def test_freight_breakdown_sums_partitions(plan: RoadmapPlan) -> None:
    """Tonnes, value and shipments per (direction, mode, commodity), added over partitions."""
    more = shipment("e-9", "S-MORE", tonnes="2.5", commodity="wheat_flour", value_usd=5)
    states = {0: state_of(plan, SHIPMENT_EVENTS), 3: state_of(plan, [more])}
    registry = _registry(plan, states)
    flour = {"direction": "KZ_to_BY", "mode": "road", "commodity": "wheat_flour"}
    assert registry.get_sample_value("roadmap_freight_tonnes", flour) == 12.5
    assert registry.get_sample_value("roadmap_freight_value_usd", flour) == 35.0
    assert registry.get_sample_value("roadmap_freight_shipments", flour) == 2.0
    elsewhere = {"direction": "other", "mode": "road", "commodity": "other"}
    assert registry.get_sample_value("roadmap_freight_tonnes", elsewhere) == 2.0
    back = {"direction": "BY_to_KZ", "mode": "rail", "commodity": "tractors"}
    assert registry.get_sample_value("roadmap_freight_tonnes", back) == 5.0
    assert registry.get_sample_value("roadmap_freight_value_usd", back) == 0.0


def test_projects_and_jobs_breakdowns(registry: CollectorRegistry) -> None:
    """Projects by latest stage; jobs by the project's sector ('other', 'unknown' included)."""
    assert registry.get_sample_value("roadmap_projects", {"stage": "operational"}) == 1.0
    assert registry.get_sample_value("roadmap_projects", {"stage": "cancelled"}) == 1.0
    assert (
        registry.get_sample_value("roadmap_projects_investment_usd", {"stage": "cancelled"}) == 50.0
    )
    assert registry.get_sample_value("roadmap_jobs", {"sector": "agricultural_machinery"}) == 450.0
    assert registry.get_sample_value("roadmap_jobs", {"sector": "other"}) == -10.0
    assert registry.get_sample_value("roadmap_jobs", {"sector": "unknown"}) == 10.0


def test_breakdowns_carry_only_bounded_labels(registry: CollectorRegistry) -> None:
    """Freight, projects and jobs series use fixed label names and values from closed sets."""
    allowed = {
        "direction": {"KZ_to_BY", "BY_to_KZ", "other"},
        "mode": {m.value for m in TransportMode},
        "commodity": set(LABELS.commodities) | {"other"},
        "stage": {s.value for s in ProjectStage},
        "sector": set(LABELS.sectors) | {"other", "unknown"},
    }
    label_names = {
        "roadmap_freight_shipments": {"direction", "mode", "commodity"},
        "roadmap_freight_tonnes": {"direction", "mode", "commodity"},
        "roadmap_freight_value_usd": {"direction", "mode", "commodity"},
        "roadmap_projects": {"stage"},
        "roadmap_projects_investment_usd": {"stage"},
        "roadmap_jobs": {"sector"},
    }
    seen = set()
    for metric in registry.collect():
        if metric.name not in label_names:
            continue
        for sample in metric.samples:
            seen.add(metric.name)
            assert set(sample.labels) == label_names[metric.name]
            for name, label_value in sample.labels.items():
                assert label_value in allowed[name], (metric.name, name, label_value)
    assert seen == set(label_names)


def test_exposition_has_no_entity_ids(registry: CollectorRegistry) -> None:
    """The scrape text never names a shipment or project, and enum labels print as values."""
    text = generate_latest(registry).decode()
    for entity_id in IDS:
        assert entity_id not in text
    assert 'mode="road"' in text
    assert 'roadmap_indicator_value{indicator="jobs_created"} 450.0' in text


def test_scorecard_has_one_series_per_indicator(registry: CollectorRegistry) -> None:
    """roadmap_indicator_target has exactly the seven default indicators as label values."""
    targets = [
        sample.labels["indicator"]
        for metric in registry.collect()
        if metric.name == "roadmap_indicator_target"
        for sample in metric.samples
    ]
    assert sorted(targets) == sorted(DEFAULT_IDS)


def test_evaluation_time_comes_from_the_injected_clock(plan: RoadmapPlan) -> None:
    """With the event clock, evaluation is at the newest occurred_at folded (2027-07-01 09:00)."""
    states = {0: state_of(plan, PROJECT_EVENTS), 1: state_of(plan, SHIPMENT_EVENTS)}
    registry = CollectorRegistry()
    registry.register(
        RoadmapCollector(plan, states, lambda held: event_clock(held) or utc(2000, 1, 1))
    )
    assert registry.get_sample_value("roadmap_evaluation_timestamp_seconds") == ROAD_SHIPPED_TS


def test_collector_reads_the_live_state_at_each_scrape(plan: RoadmapPlan) -> None:
    """An event folded after registration shows at the next scrape: no re-registration."""
    states = {0: state_of(plan, [])}
    registry = _registry(plan, states)
    assert _indicator(registry, "roadmap_indicator_value", "jobs_created") == 0.0
    apply(states[0], hiring("h-1", "P-1", "2025-03", 12))
    assert _indicator(registry, "roadmap_indicator_value", "jobs_created") == 12.0


def test_projection_and_outlook_series(registry: CollectorRegistry) -> None:
    """On 2027-07-03 the 180-day pace window runs from 2027-01-05; 912 days are left to
    2029-12-31. Road freight gained its 10 t in the window: 10 + 10 / 180 * 912 = 60.67 t, and
    3,004,000 t would take 54,071,820 days at that pace (past the calendar: no completion).
    Jobs gained nothing in the window (the reports are of 2025): projected 450, never reached.
    Both are behind their trajectories; the flour share (1.0 against 0.102) is on track and,
    as a ratio, not projected."""
    road = _indicator(registry, "roadmap_indicator_projected", "road_freight_tonnes")
    assert road == pytest.approx(10 + 10 / 180 * 912, rel=1e-12)
    assert _indicator(registry, "roadmap_indicator_projected", "jobs_created") == 450.0
    assert _indicator(registry, "roadmap_indicator_projected", "flour_export_share_ratio") is None
    completion = "roadmap_indicator_projected_completion_timestamp_seconds"
    assert _indicator(registry, completion, "jobs_created") is None
    assert _indicator(registry, completion, "road_freight_tonnes") is None
    states = [
        (sample.labels["indicator"], sample.labels["outlook"], sample.value)
        for metric in registry.collect()
        if metric.name == "roadmap_indicator_outlook"
        for sample in metric.samples
    ]
    outlooks = {indicator: state for indicator, state, value in states if value == 1}
    assert outlooks["road_freight_tonnes"] == "behind"
    assert outlooks["jobs_created"] == "behind"
    assert outlooks["flour_export_share_ratio"] == "on_track"
    # Every state is a series, 0 but for the current one: a change of outlook adds no series.
    jobs = sorted(
        (state, value) for indicator, state, value in states if indicator == "jobs_created"
    )
    assert jobs == [("at_risk", 0.0), ("behind", 1.0), ("on_track", 0.0)]


def test_a_pace_that_reaches_the_target_gives_its_day(plan: RoadmapPlan) -> None:
    """900 jobs reported for 2027-06, within the window: 5 a day. The 900 missing take 180
    days from 2027-07-03: 2027-12-30, 00:00 UTC. A count of projects is not projected."""
    states = {0: state_of(plan, [hiring("h-1", "P-1", "2027-06", 900), milestone("m-1", "P-1")])}
    registry = _registry(plan, states)
    completion = "roadmap_indicator_projected_completion_timestamp_seconds"
    assert _indicator(registry, completion, "jobs_created") == (
        datetime(2027, 12, 30, tzinfo=UTC).timestamp()
    )
    assert _indicator(registry, "roadmap_indicator_projected", "industrial_projects") is None
