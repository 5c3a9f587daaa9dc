"""Builders shared by the metrics unit tests, and checks that they build what they say.

Events go through ``event_adapter`` (the real contract), so a builder cannot produce an event
that ingest would not publish. Other ``test_metrics_*`` modules import from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from contracts.events import (
    HiringReportEvent,
    ProjectMilestoneEvent,
    TradeShipmentEvent,
    event_adapter,
)
from contracts.keys import AnyEvent
from contracts.roadmap import RoadmapFile, load_roadmap, parse_roadmap
from services.metrics.fold import Applied, BreakdownLabels, PartitionState, apply
from services.metrics.plan import RoadmapPlan, compile_roadmap
from services.metrics.readings import Reading, read

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROADMAP: RoadmapFile = load_roadmap(REPO / "deploy" / "roadmap.yaml")
DEFAULT_IDS = (
    "jobs_created",
    "industrial_projects",
    "industrial_projects_value_usd",
    "joint_ventures_operational",
    "road_freight_tonnes",
    "road_freight_growth_ratio",
    "flour_export_share_ratio",
)
LABELS = BreakdownLabels(
    corridor=("KZ", "BY"),
    commodities=frozenset({"wheat_flour", "wheat", "tractors"}),
    sectors=frozenset({"agricultural_machinery", "food_processing"}),
)


def default_plan() -> RoadmapPlan:
    """The plan of ``deploy/roadmap.yaml`` (the seven default indicators)."""
    return compile_roadmap(DEFAULT_ROADMAP)


def custom_plan(indicators_yaml: str) -> RoadmapPlan:
    """A plan from a roadmap file holding ``indicators_yaml`` (a YAML list, unindented)."""
    body = "\n".join(f"  {line}" if line else line for line in indicators_yaml.splitlines())
    text = f"version: 1\nroadmap: custom-test\ntitle: Custom test roadmap\nindicators:\n{body}\n"
    return compile_roadmap(parse_roadmap(text, Path("custom-roadmap.yaml")))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _envelope(event_id: str, kind: str, occurred_at: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "schema_version": 1,
        "occurred_at": occurred_at,
        "source": "unit-test",
        "data": data,
    }


def shipment(
    event_id: str,
    shipment_id: str = "S-1",
    *,
    tonnes: str | int = "1",
    origin: str = "KZ",
    destination: str = "BY",
    mode: str = "road",
    commodity: str = "wheat",
    value_usd: str | int | None = None,
    shipped_on: str = "2025-03-01",
    occurred_at: str = "2025-03-01T10:00:00Z",
) -> TradeShipmentEvent:
    """A ``trade.shipment`` canonical event (amounts as decimal strings or integers)."""
    data: dict[str, Any] = {
        "shipment_id": shipment_id,
        "origin": origin,
        "destination": destination,
        "mode": mode,
        "commodity": commodity,
        "tonnes": tonnes,
        "shipped_on": shipped_on,
    }
    if value_usd is not None:
        data["value_usd"] = value_usd
    event = event_adapter.validate_python(_envelope(event_id, "trade.shipment", occurred_at, data))
    assert isinstance(event, TradeShipmentEvent)
    return event


def milestone(
    event_id: str,
    project_id: str = "P-1",
    *,
    stage: str = "agreed",
    sector: str = "agricultural_machinery",
    joint_venture: bool = False,
    investment_usd: str | int = 0,
    planned_jobs: int = 0,
    reached_on: str = "2025-03-01",
    occurred_at: str = "2025-03-01T10:00:00Z",
) -> ProjectMilestoneEvent:
    """A ``project.milestone`` canonical event."""
    data = {
        "project_id": project_id,
        "name": f"Project {project_id}",
        "sector": sector,
        "joint_venture": joint_venture,
        "investment_usd": investment_usd,
        "stage": stage,
        "planned_jobs": planned_jobs,
        "reached_on": reached_on,
    }
    event = event_adapter.validate_python(
        _envelope(event_id, "project.milestone", occurred_at, data)
    )
    assert isinstance(event, ProjectMilestoneEvent)
    return event


def hiring(
    event_id: str,
    project_id: str = "P-1",
    period: str = "2025-03",
    jobs: int = 1,
    *,
    reported_on: str = "2025-04-01",
    occurred_at: str = "2025-04-01T10:00:00Z",
) -> HiringReportEvent:
    """A ``hiring.report`` event: ``jobs`` net new jobs at ``project_id`` in ``period``."""
    data = {
        "project_id": project_id,
        "period": period,
        "jobs_created": jobs,
        "reported_on": reported_on,
    }
    event = event_adapter.validate_python(_envelope(event_id, "hiring.report", occurred_at, data))
    assert isinstance(event, HiringReportEvent)
    return event


def state_of(
    plan: RoadmapPlan, events: Iterable[AnyEvent], labels: BreakdownLabels = LABELS
) -> PartitionState:
    """A fresh partition state with ``events`` folded in, in order."""
    state = PartitionState(plan, labels)
    for event in events:
        apply(state, event)
    return state


def outcomes(state: PartitionState, events: Iterable[AnyEvent]) -> list[Applied]:
    """Fold ``events`` into ``state`` and return what each one was."""
    return [apply(state, event) for event in events]


def reading(
    plan: RoadmapPlan,
    states: PartitionState | Mapping[int, PartitionState],
    indicator_id: str,
    at: datetime,
) -> Reading:
    """``read`` of one indicator; a single state is read as partition 0."""
    held = {0: states} if isinstance(states, PartitionState) else states
    return read(plan.indicator(indicator_id), held, at)


def value(
    plan: RoadmapPlan, state: PartitionState, indicator_id: str, at: datetime
) -> Decimal | None:
    """The indicator's value over ``state`` alone, at ``at``."""
    return reading(plan, state, indicator_id, at).value


def test_builders_produce_normalised_canonical_events() -> None:
    """Builders validate through the contract: codes normalised, amounts exact decimals."""
    s = shipment("e-1", tonnes="22.5", origin="kz", commodity="Wheat_Flour", value_usd="10.25")
    assert (s.data.origin, s.data.commodity) == ("KZ", "wheat_flour")
    assert (s.data.tonnes, s.data.value_usd) == (Decimal("22.5"), Decimal("10.25"))
    assert s.data.shipped_on == date(2025, 3, 1)
    assert s.occurred_at == utc(2025, 3, 1, 10)
    m = milestone("m-1", "P-9", stage="operational", joint_venture=True, investment_usd="5")
    assert (m.data.project_id, m.data.stage.value, m.data.joint_venture) == (
        "P-9",
        "operational",
        True,
    )
    h = hiring("h-1", "P-9", "2025-07", -4, occurred_at="2025-08-01T00:00:00+05:00")
    assert (h.data.period, h.data.jobs_created) == ("2025-07", -4)
    assert h.occurred_at == utc(2025, 7, 31, 19)


def test_default_roadmap_holds_the_seven_indicators() -> None:
    """deploy/roadmap.yaml compiles to the seven default indicators, in file order."""
    plan = default_plan()
    assert tuple(p.indicator.id for p in plan.indicators) == DEFAULT_IDS
    assert [p.kind for p in plan.indicators] == [
        "sum",
        "count",
        "sum",
        "count",
        "sum",
        "yoy_growth",
        "share",
    ]


def test_custom_plan_wraps_indicators_in_a_roadmap_file() -> None:
    """custom_plan() indents the indicators under a valid roadmap file."""
    plan = custom_plan(
        """\
- id: anything
  title: Anything
  unit: things
  compute: {aggregation: count, event_type: trade.shipment}
  baseline: 0
  target: 10
  start: 2025-01-01
  deadline: 2025-12-31
  tolerance: 0.1
  severity: info
  owner: test-owner
  runbook: docs/runbooks.md#anything
"""
    )
    assert plan.roadmap == "custom-test"
    assert [p.indicator.id for p in plan.indicators] == ["anything"]
