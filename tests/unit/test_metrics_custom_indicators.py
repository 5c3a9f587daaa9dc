"""Indicators written in a roadmap file, with no code change: the plan's where-filters and slots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import EventType
from contracts.keys import AnyEvent
from contracts.roadmap.model import Where
from services.metrics.entities import record_of
from services.metrics.plan import (
    RoadmapPlan,
    Selection,
    compile_where,
    contributions,
    fields_read,
)
from tests.unit.test_metrics_builders import (
    custom_plan,
    default_plan,
    hiring,
    milestone,
    reading,
    shipment,
    state_of,
    utc,
    value,
)

AT = utc(2025, 6, 15, 12)


def _indicator(indicator_id: str, compute: str) -> str:
    """One indicator's YAML (a list item) around ``compute`` (YAML, unindented)."""
    body = "\n".join(f"    {line}" for line in compute.strip().splitlines())
    return f"""\
- id: {indicator_id}
  title: {indicator_id}
  unit: things
  compute:
{body}
  baseline: 0
  target: 100
  start: 2025-01-01
  deadline: 2025-12-31
  tolerance: 0.1
  severity: info
  owner: test-owner
  runbook: docs/runbooks.md#{indicator_id}
"""


def _rail_tractors(origin: str, commodity: str) -> RoadmapPlan:
    return custom_plan(
        _indicator(
            "rail_tractors",
            f"""
aggregation: count
event_type: trade.shipment
where:
  origin: {origin}
  mode: rail
  commodity: {commodity}
""",
        )
    )


def _count_rail_tractors(plan: RoadmapPlan) -> Decimal | None:
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", mode="rail", commodity="tractors"),
            shipment(
                "e-2", "S-2", mode="rail", commodity="Tractors", origin="kz", destination="ru"
            ),
            # Not counted: other origin, other mode, other commodity.
            shipment(
                "e-3", "S-3", mode="rail", commodity="tractors", origin="BY", destination="KZ"
            ),
            shipment("e-4", "S-4", mode="road", commodity="tractors"),
            shipment("e-5", "S-5", mode="rail", commodity="wheat"),
        ],
    )
    return value(plan, state, "rail_tractors", AT)


def test_count_of_rail_tractor_shipments_from_kz() -> None:
    """A count of KZ rail tractor shipments; events sent as 'kz'/'Tractors' are canonical too."""
    assert _count_rail_tractors(_rail_tractors("KZ", "tractors")) == Decimal(2)


def test_filter_values_in_the_file_are_normalised_like_events() -> None:
    """'origin: kz' and 'commodity: TRACTORS' in the file match the canonical 'KZ', 'tractors'."""
    assert _count_rail_tractors(_rail_tractors("kz", "TRACTORS")) == Decimal(2)


def test_sum_of_planned_jobs_of_financed_projects_in_listed_sectors() -> None:
    """planned_jobs of projects at or past 'financed' in food_processing or dairy: 40 + 25 = 65."""
    plan = custom_plan(
        _indicator(
            "financed_food_jobs",
            """
aggregation: sum
event_type: project.milestone
field: planned_jobs
window: all
where:
  sector: [food_processing, dairy]
  stage_at_least: financed
""",
        )
    )
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="food_processing", stage="financed", planned_jobs=40),
            milestone("m-2", "P-2", sector="dairy", stage="operational", planned_jobs=25),
            # Not counted: only agreed, cancelled, another sector.
            milestone("m-3", "P-3", sector="food_processing", stage="agreed", planned_jobs=100),
            milestone("m-4", "P-4", sector="dairy", stage="cancelled", planned_jobs=200),
            milestone("m-5", "P-5", sector="energy", stage="operational", planned_jobs=300),
        ],
    )
    assert value(plan, state, "financed_food_jobs", AT) == Decimal(65)
    # A correction to 'cancelled' takes P-1 out.
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", sector="food_processing", stage="financed", planned_jobs=40),
            milestone("m-2", "P-2", sector="dairy", stage="operational", planned_jobs=25),
            milestone(
                "m-1b",
                "P-1",
                sector="food_processing",
                stage="cancelled",
                planned_jobs=40,
                occurred_at="2025-04-01T00:00Z",
            ),
        ],
    )
    assert value(plan, state, "financed_food_jobs", AT) == Decimal(25)


def test_route_between_lowercase_and_commodity_list_since_start() -> None:
    """route_between [kz, ru] keeps both directions; a commodity list keeps any of its values."""
    plan = custom_plan(
        _indicator(
            "grain_kz_ru",
            """
aggregation: sum
event_type: trade.shipment
field: tonnes
window: since_start
where:
  route_between: [kz, ru]
  commodity: [wheat, wheat_flour]
""",
        )
    )
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=3, destination="RU", commodity="wheat"),
            shipment(
                "e-2",
                "S-2",
                tonnes=4,
                origin="RU",
                destination="KZ",
                commodity="wheat_flour",
                mode="rail",
            ),
            # Not counted: another route, another commodity, before the start.
            shipment("e-3", "S-3", tonnes=50, destination="BY", commodity="wheat"),
            shipment("e-4", "S-4", tonnes=60, destination="RU", commodity="barley"),
            shipment(
                "e-5",
                "S-5",
                tonnes=70,
                destination="RU",
                commodity="wheat",
                shipped_on="2024-12-31",
            ),
        ],
    )
    assert value(plan, state, "grain_kz_ru", AT) == Decimal(7)


def test_count_with_boolean_and_stage_equality_filters() -> None:
    """'joint_venture: false' and 'stage: cancelled' count cancelled non-JV projects only."""
    plan = custom_plan(
        _indicator(
            "cancelled_non_jv",
            """
aggregation: count
event_type: project.milestone
where:
  joint_venture: false
  stage: cancelled
""",
        )
    )
    state = state_of(
        plan,
        [
            milestone("m-1", "P-1", stage="cancelled"),
            milestone("m-2", "P-2", stage="cancelled", joint_venture=True),
            milestone("m-3", "P-3", stage="operational"),
        ],
    )
    assert value(plan, state, "cancelled_non_jv", AT) == Decimal(1)


def test_hiring_filtered_by_project() -> None:
    """A sum of jobs_created for one project_id, over all periods: 5 - 2 = 3."""
    plan = custom_plan(
        _indicator(
            "p1_jobs",
            """
aggregation: sum
event_type: hiring.report
field: jobs_created
window: all
where:
  project_id: P-1
""",
        )
    )
    state = state_of(
        plan,
        [
            hiring("h-1", "P-1", "2024-11", 5),
            hiring("h-2", "P-1", "2026-01", -2),
            hiring("h-3", "P-2", "2025-03", 100),
        ],
    )
    assert value(plan, state, "p1_jobs", AT) == Decimal(3)


def test_custom_share_and_growth() -> None:
    """Rail share of KZ->BY tonnes since start: 6 / 8; YoY tractor value growth: 30 / 20 - 1."""
    plan = custom_plan(
        _indicator(
            "rail_share",
            """
aggregation: share
window: since_start
numerator:
  event_type: trade.shipment
  field: tonnes
  where: {origin: KZ, destination: BY, mode: rail}
denominator:
  event_type: trade.shipment
  field: tonnes
  where: {origin: KZ, destination: BY}
""",
        )
        + _indicator(
            "tractor_value_growth",
            """
aggregation: yoy_growth
measure:
  event_type: trade.shipment
  field: value_usd
  where: {commodity: tractors}
""",
        )
    )
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=6, mode="rail", commodity="tractors", value_usd=30),
            shipment("e-2", "S-2", tonnes=2, commodity="wheat", value_usd=999),
            shipment(
                "e-3",
                "S-3",
                tonnes=9,
                origin="BY",
                destination="KZ",
                commodity="tractors",
                value_usd=20,
                shipped_on="2024-05-01",
            ),
        ],
    )
    share = reading(plan, state, "rail_share", AT)
    assert share.components == {"numerator": Decimal(6), "denominator": Decimal(8)}
    assert share.value == Decimal("0.75")
    growth = reading(plan, state, "tractor_value_growth", AT)
    assert growth.components == {"current": Decimal(30), "previous": Decimal(20)}
    assert growth.value == Decimal("0.5")


# -- compile_where and contributions, directly --------------------------------------------------


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        ({"origin": "KZ"}, True),
        ({"origin": ["BY", "RU"]}, False),
        ({"commodity": "wheat_flour", "mode": "road"}, True),
        ({"commodity": ["wheat", "tractors"]}, False),
        ({"origin": "kz"}, True),
        ({"commodity": "WHEAT_FLOUR", "mode": "road"}, True),
        ({"route_between": ["by", "kz"]}, True),
        ({"route_between": ["kz", "ru"]}, False),
        ({}, True),
    ],
)
def test_compile_where_matches_canonical_values(where: dict[str, object], matches: bool) -> None:
    """Filters compare with the canonical record; file values are read as events hold them."""
    _, _, record = record_of(
        shipment("e-1", origin="KZ", destination="BY", commodity="wheat_flour")
    )
    predicate = compile_where(EventType.TRADE_SHIPMENT, Where.model_validate(where))
    assert predicate(record) is matches


@pytest.mark.parametrize(
    ("stage", "at_least_financed"),
    [
        ("agreed", False),
        ("financed", True),
        ("construction", True),
        ("operational", True),
        ("cancelled", False),
    ],
)
def test_stage_at_least_excludes_earlier_and_cancelled(stage: str, at_least_financed: bool) -> None:
    """stage_at_least: financed keeps financed, construction and operational only."""
    _, _, record = record_of(milestone("m-1", stage=stage))
    predicate = compile_where(
        EventType.PROJECT_MILESTONE, Where.model_validate({"stage_at_least": "financed"})
    )
    assert predicate(record) is at_least_financed


def test_contributions_of_a_flour_export_to_the_default_plan() -> None:
    """A KZ->BY road flour shipment (2 t, USD 30) adds to road tonnes, growth and the share."""
    plan: RoadmapPlan = default_plan()
    event_type, _, record = record_of(
        shipment("e-1", tonnes=2, commodity="wheat_flour", value_usd=30)
    )
    road = plan.indicator("road_freight_tonnes").slots[0]
    growth = plan.indicator("road_freight_growth_ratio").slots[0]
    numerator, denominator = plan.indicator("flour_export_share_ratio").slots
    found = list(contributions(plan, event_type, record))
    assert len({slot for slot, _ in found}) == len(found)  # each slot once
    assert dict(found) == {
        road: 2_000_000,
        growth: 2_000_000,
        numerator: 30_000_000,
        denominator: 30_000_000,
    }


def test_contributions_skip_a_missing_value() -> None:
    """Without value_usd, the shipment adds its tonnes but nothing to the share."""
    plan = default_plan()
    event_type, _, record = record_of(shipment("e-1", tonnes=2, commodity="wheat_flour"))
    road = plan.indicator("road_freight_tonnes").slots[0]
    growth = plan.indicator("road_freight_growth_ratio").slots[0]
    assert dict(contributions(plan, event_type, record)) == {road: 2_000_000, growth: 2_000_000}


def test_indicators_sharing_a_selection_keep_their_own_windows() -> None:
    """Two sums of the same tonnes, 'all' and 'since_start': 2024 tonnes count in one only."""
    compute = """
aggregation: sum
event_type: trade.shipment
field: tonnes
window: {window}
"""
    plan = custom_plan(
        _indicator("tonnes_ever", compute.format(window="all"))
        + _indicator("tonnes_since_start", compute.format(window="since_start"))
    )
    state = state_of(
        plan,
        [
            shipment("e-1", "S-1", tonnes=5, shipped_on="2024-06-01"),
            shipment("e-2", "S-2", tonnes=7, mode="air", origin="CN", shipped_on="2025-02-01"),
        ],
    )
    assert value(plan, state, "tonnes_ever", AT) == Decimal(12)
    assert value(plan, state, "tonnes_since_start", AT) == Decimal(7)


# -- Selection: the slots a record counts in, remembered per combination of filtered values ------

_FILTERED = custom_plan(
    _indicator(
        "rail_tractors_from_kz",
        """
aggregation: count
event_type: trade.shipment
where:
  origin: KZ
  mode: [rail, multimodal]
  commodity: tractors
""",
    )
    + _indicator(
        "kz_by_value",
        """
aggregation: sum
event_type: trade.shipment
field: value_usd
where:
  route_between: [KZ, BY]
""",
    )
    + _indicator(
        "financed_jv_jobs",
        """
aggregation: sum
event_type: project.milestone
field: planned_jobs
where:
  joint_venture: true
  stage_at_least: financed
""",
    )
)
_COUNTRIES = st.sampled_from(["KZ", "BY", "RU", "CN"])


@st.composite
def _records(draw: st.DrawFn) -> tuple[EventType, Any]:
    event: AnyEvent
    if draw(st.booleans()):
        event = shipment(
            "e-1",
            origin=draw(_COUNTRIES),
            destination=draw(_COUNTRIES),
            mode=draw(st.sampled_from(["road", "rail", "multimodal", "air"])),
            commodity=draw(st.sampled_from(["tractors", "wheat", "wheat_flour"])),
            value_usd=draw(st.sampled_from([None, 5])),
        )
    else:
        event = milestone(
            "m-1",
            stage=draw(st.sampled_from(["agreed", "financed", "operational", "cancelled"])),
            joint_venture=draw(st.booleans()),
            planned_jobs=7,
        )
    event_type, _, record = record_of(event)
    return event_type, record


def _selected_directly(plan: RoadmapPlan, event_type: EventType, record: Any) -> set[int]:
    return {i for i in plan.slots_by_type[event_type] if plan.slots[i].matches(record)}


@pytest.mark.parametrize("plan", [_FILTERED, default_plan()], ids=["filtered", "default"])
@pytest.mark.parametrize("limit", [1, 4096])
@settings(max_examples=150, deadline=None)
@given(records=st.lists(_records(), min_size=1, max_size=30))
def test_a_remembered_selection_is_the_filters_applied(
    plan: RoadmapPlan, limit: int, records: list[tuple[EventType, Any]]
) -> None:
    """Whatever came before, and whether the combination fits in memory or not (limit 1)."""
    selections = {
        event_type: Selection([(i, plan.slots[i]) for i in indices], limit=limit)
        for event_type, indices in plan.slots_by_type.items()
    }
    for event_type, record in records:
        found = {index for index, _ in selections[event_type].of(record)}
        assert found == _selected_directly(plan, event_type, record)


def test_fields_read_are_what_the_filters_look_at() -> None:
    where = Where.model_validate({"commodity": "wheat", "route_between": ["KZ", "BY"]})
    assert fields_read(where) == ("commodity", "destination", "origin")
    where = Where.model_validate({"sector": "dairy", "stage_at_least": "financed"})
    assert fields_read(where) == ("sector", "stage")
    assert fields_read(Where()) == ()
