"""Order-independence and partition additivity of the fold, checked against a reference.

The reference is written here from the issue's definitions with plain Python and ``Decimal``:
pick the latest version of each natural key by ``(occurred_at, event_id)``, then filter and add.
It shares nothing with the fold but the event models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import (
    HiringReport,
    HiringReportEvent,
    ProjectMilestoneEvent,
    TradeShipmentEvent,
)
from contracts.keys import AnyEvent
from services.metrics.fold import Applied, PartitionState, apply, fold, jobs_by_sector
from services.metrics.plan import RoadmapPlan
from services.metrics.readings import read
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

PLAN = default_plan()
AT = utc(2026, 2, 20, 12)
START = date(2025, 1, 1)
SHIPMENT_IDS = ("S-1", "S-2", "S-3", "S-4")
PROJECT_IDS = ("P-1", "P-2", "P-3")
# P-4 never gets a milestone: its jobs are in sector "unknown".
HIRING_KEYS = (("P-1", "2025-01"), ("P-1", "2026-02"), ("P-2", "2024-12"), ("P-4", "2026-03"))
COUNTRIES = ("KZ", "BY", "RU")
COMMODITIES = ("wheat_flour", "wheat", "tractors", "salt")
SECTORS = ("agricultural_machinery", "food_processing", "mining")
STAGES = ("agreed", "financed", "construction", "operational", "cancelled")
SHIPPED_ON = (
    "2024-12-31",
    "2025-01-01",
    "2025-02-28",
    "2025-03-01",
    "2025-12-31",
    "2026-01-01",
    "2026-02-20",
    "2026-02-28",
    "2026-03-01",
)
MICRO = 10**6

Reference = dict[str, tuple[Decimal | None, dict[str, Decimal]]]
Tallies = tuple[dict[object, tuple[int, ...]], dict[object, tuple[int, ...]], dict[str, int]]

# -- event histories --------------------------------------------------------------------------

_occurred = st.integers(0, 3).map(lambda minute: f"2025-05-01T00:0{minute}:00Z")
_tonnes = st.integers(1, 10**7).map(lambda n: str(Decimal(n) / 1000))
_value = st.none() | st.integers(0, 10**9).map(lambda n: str(Decimal(n) / 100))


def _ranks(draw: st.DrawFn) -> list[int]:
    """Distinct event-id ranks for the versions of one key (none, one or several)."""
    count = draw(st.integers(0, 3))
    return draw(st.lists(st.integers(0, 99), min_size=count, max_size=count, unique=True))


@st.composite
def histories(draw: st.DrawFn) -> list[AnyEvent]:
    """Several versions of a few keys; versions of one key have distinct event ids."""
    events: list[AnyEvent] = []
    for sid in SHIPMENT_IDS:
        for rank in _ranks(draw):
            events.append(
                shipment(
                    f"{sid}-{rank:02d}",
                    sid,
                    tonnes=draw(_tonnes),
                    origin=draw(st.sampled_from(COUNTRIES)),
                    destination=draw(st.sampled_from(COUNTRIES)),
                    mode=draw(st.sampled_from(("road", "rail"))),
                    commodity=draw(st.sampled_from(COMMODITIES)),
                    value_usd=draw(_value),
                    shipped_on=draw(st.sampled_from(SHIPPED_ON)),
                    occurred_at=draw(_occurred),
                )
            )
    for pid in PROJECT_IDS:
        for rank in _ranks(draw):
            events.append(
                milestone(
                    f"{pid}-{rank:02d}",
                    pid,
                    stage=draw(st.sampled_from(STAGES)),
                    sector=draw(st.sampled_from(SECTORS)),
                    joint_venture=draw(st.booleans()),
                    investment_usd=draw(st.integers(0, 10**6)),
                    occurred_at=draw(_occurred),
                )
            )
    for pid, period in HIRING_KEYS:
        for rank in _ranks(draw):
            events.append(
                hiring(
                    f"h-{pid}-{period}-{rank:02d}",
                    pid,
                    period,
                    draw(st.integers(-50, 200)),
                    occurred_at=draw(_occurred),
                )
            )
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[AnyEvent], list[AnyEvent]]:
    """A history, and the same events in a random order with some delivered again."""
    events = draw(histories())
    again = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    return events, draw(st.permutations(events + again))


# -- the reference --------------------------------------------------------------------------


def _natural_key(event: AnyEvent) -> tuple[str, ...]:
    match event:
        case TradeShipmentEvent(data=data):
            return ("shipment", data.shipment_id)
        case ProjectMilestoneEvent(data=data):
            return ("project", data.project_id)
        case HiringReportEvent(data=data):
            return ("hiring", data.project_id, data.period)


def _latest(events: Iterable[AnyEvent]) -> list[AnyEvent]:
    best: dict[tuple[str, ...], AnyEvent] = {}
    for event in events:
        key = _natural_key(event)
        held = best.get(key)
        if held is None or (event.occurred_at, event.event_id) > (held.occurred_at, held.event_id):
            best[key] = event
    return list(best.values())


def _same_day(on: date, year: int) -> date:
    """on's month and day in ``year``; 29 February becomes the 28th in a plain year."""
    if (on.month, on.day) == (2, 29):
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, on.month, on.day)


def reference(events: Iterable[AnyEvent], at: datetime) -> Reference:
    """Each default indicator's (value, components), from the issue's definitions."""
    latest = _latest(events)
    ships = [e.data for e in latest if isinstance(e, TradeShipmentEvent)]
    projects = [e.data for e in latest if isinstance(e, ProjectMilestoneEvent)]
    reports = [e.data for e in latest if isinstance(e, HiringReportEvent)]
    on = at.date()

    def ytd(year: int) -> tuple[date, date]:
        return date(year, 1, 1), _same_day(on, year)

    # The pace window of the projected flows (jobs, road tonnes): the last 180 days, none before
    # the start.
    pace_from = max(on - timedelta(days=179), START)

    def recent(day: date) -> bool:
        return pace_from <= day <= on

    def month(report: HiringReport) -> date:
        return date(int(report.period[:4]), int(report.period[5:]), 1)

    jobs = Decimal(sum(r.jobs_created for r in reports if START <= month(r) <= on))
    jobs_recent = Decimal(sum(r.jobs_created for r in reports if recent(month(r))))
    live = [p for p in projects if p.stage.value != "cancelled"]
    count = Decimal(len(live))
    worth = sum((p.investment_usd for p in live), Decimal(0))
    ventures = Decimal(
        sum(1 for p in projects if p.joint_venture and p.stage.value == "operational")
    )
    road = [
        s for s in ships if s.mode.value == "road" and {s.origin, s.destination} == {"KZ", "BY"}
    ]
    road_tonnes = sum((s.tonnes for s in road if START <= s.shipped_on <= on), Decimal(0))
    road_recent = sum((s.tonnes for s in road if recent(s.shipped_on)), Decimal(0))
    this_year, last_year = ytd(on.year), ytd(on.year - 1)
    current = sum(
        (s.tonnes for s in road if this_year[0] <= s.shipped_on <= this_year[1]), Decimal(0)
    )
    previous = sum(
        (s.tonnes for s in road if last_year[0] <= s.shipped_on <= last_year[1]), Decimal(0)
    )
    exports = [
        s
        for s in ships
        if (s.origin, s.destination) == ("KZ", "BY")
        and s.value_usd is not None
        and this_year[0] <= s.shipped_on <= this_year[1]
    ]
    denominator = sum((s.value_usd or Decimal(0) for s in exports), Decimal(0))
    numerator = sum(
        (s.value_usd or Decimal(0) for s in exports if s.commodity == "wheat_flour"), Decimal(0)
    )
    return {
        "jobs_created": (jobs, {"sum": jobs, "recent": jobs_recent}),
        "industrial_projects": (count, {"count": count}),
        "industrial_projects_value_usd": (worth, {"sum": worth}),
        "joint_ventures_operational": (ventures, {"count": ventures}),
        "road_freight_tonnes": (road_tonnes, {"sum": road_tonnes, "recent": road_recent}),
        "road_freight_growth_ratio": (
            current / previous - 1 if previous else None,
            {"current": current, "previous": previous},
        ),
        "flour_export_share_ratio": (
            numerator / denominator if denominator else None,
            {"numerator": numerator, "denominator": denominator},
        ),
    }


def _direction(origin: str, destination: str) -> str:
    if (origin, destination) == ("KZ", "BY"):
        return "KZ_to_BY"
    if (origin, destination) == ("BY", "KZ"):
        return "BY_to_KZ"
    return "other"


def reference_tallies(events: Iterable[AnyEvent]) -> Tallies:
    """Freight rows, projects by stage and jobs by sector, in millionths, zero rows left out."""
    latest = _latest(events)
    freight: dict[object, list[int]] = defaultdict(lambda: [0, 0, 0])
    stages: dict[object, list[int]] = defaultdict(lambda: [0, 0])
    sector_of: dict[str, str] = {}
    for event in latest:
        if isinstance(event, TradeShipmentEvent):
            s = event.data
            commodity = (
                s.commodity if s.commodity in {"wheat_flour", "wheat", "tractors"} else "other"
            )
            row = freight[(_direction(s.origin, s.destination), s.mode.value, commodity)]
            row[0] += 1
            row[1] += int(s.tonnes * MICRO)
            row[2] += int((s.value_usd or 0) * MICRO)
        elif isinstance(event, ProjectMilestoneEvent):
            p = event.data
            stages[p.stage.value][0] += 1
            stages[p.stage.value][1] += int(p.investment_usd * MICRO)
            listed = p.sector in {"agricultural_machinery", "food_processing"}
            sector_of[p.project_id] = p.sector if listed else "other"
    jobs: dict[str, int] = defaultdict(int)
    for event in latest:
        if isinstance(event, HiringReportEvent):
            r = event.data
            jobs[sector_of.get(r.project_id, "unknown")] += r.jobs_created * MICRO
    return (
        {k: tuple(v) for k, v in freight.items()},
        {k: tuple(v) for k, v in stages.items()},
        {k: v for k, v in jobs.items() if v},
    )


# -- what the fold says ---------------------------------------------------------------------


def observed(plan: RoadmapPlan, states: Mapping[int, PartitionState], at: datetime) -> Reference:
    found: Reference = {}
    for indicator_id in DEFAULT_IDS:
        got = read(plan.indicator(indicator_id), states, at)
        found[indicator_id] = (got.value, got.components)
    return found


def tallies(state: PartitionState) -> Tallies:
    """The state's breakdowns with all-zero rows (keys that once held something) left out."""
    return (
        {k: tuple(v) for k, v in state.freight.items() if any(v)},
        {k: tuple(v) for k, v in state.projects_by_stage.items() if any(v)},
        {k: v for k, v in jobs_by_sector(state).items() if v},
    )


def _distinct_keys(events: Iterable[AnyEvent]) -> int:
    return len({_natural_key(e) for e in events})


@settings(max_examples=200, deadline=None)
@given(deliveries())
def test_any_order_and_redelivery_give_the_reference_state(
    case: tuple[list[AnyEvent], list[AnyEvent]],
) -> None:
    """Folding in any order, with re-deliveries, gives the reference readings and tallies."""
    events, delivered = case
    in_order = state_of(PLAN, events)
    shuffled = PartitionState(PLAN, LABELS)
    applied = [apply(shuffled, event) for event in delivered]

    expected = reference(events, AT)
    assert observed(PLAN, {0: shuffled}, AT) == expected
    assert observed(PLAN, {0: in_order}, AT) == expected
    assert tallies(shuffled) == tallies(in_order) == reference_tallies(events)
    # Each key is new exactly once, whatever came first.
    assert applied.count(Applied.NEW) == _distinct_keys(events)


@settings(max_examples=50, deadline=None)
@given(deliveries())
def test_reduce_with_fold_matches_apply(case: tuple[list[AnyEvent], list[AnyEvent]]) -> None:
    """functools.reduce(fold, events, state) is the same fold as calling apply in a loop."""
    events, delivered = case
    reduced = reduce(fold, delivered, PartitionState(PLAN, LABELS))
    assert observed(PLAN, {0: reduced}, AT) == reference(events, AT)
    assert tallies(reduced) == reference_tallies(events)


# -- partition additivity ---------------------------------------------------------------------


def _entity(event: AnyEvent) -> str:
    """What a partition owns: a shipment, or a project with its hiring reports."""
    if isinstance(event, TradeShipmentEvent):
        return f"shipment/{event.data.shipment_id}"
    return f"project/{event.data.project_id}"


@st.composite
def split_histories(draw: st.DrawFn) -> tuple[list[AnyEvent], dict[str, int]]:
    events = draw(histories())
    entities = sorted({_entity(e) for e in events})
    owners = draw(st.lists(st.integers(0, 2), min_size=len(entities), max_size=len(entities)))
    return events, dict(zip(entities, owners, strict=True))


@settings(max_examples=150, deadline=None)
@given(split_histories())
def test_partitions_add_up_to_one_state(case: tuple[list[AnyEvent], dict[str, int]]) -> None:
    """Events split by entity over three states read exactly like one state holding them all."""
    events, owner = case
    whole = state_of(PLAN, events)
    parts = {p: state_of(PLAN, [e for e in events if owner[_entity(e)] == p]) for p in range(3)}
    for indicator_id in DEFAULT_IDS:
        indicator = PLAN.indicator(indicator_id)
        split = read(indicator, parts, AT)
        single = read(indicator, {0: whole}, AT)
        assert (split.value, split.components) == (single.value, single.components)
        assert split.last_event_at == single.last_event_at
        assert sorted(split.partition_components) == [0, 1, 2]
        for name, total in split.components.items():
            assert sum(c[name] for c in split.partition_components.values()) == total
        for p, state in parts.items():
            assert split.partition_components[p] == read(indicator, {p: state}, AT).components


def test_share_is_taken_after_adding_partitions() -> None:
    """Flour 10 of 10 in one partition and 0 of 30 in another: 10 / 40 = 0.25, not 0.5."""
    flour = shipment("e-1", "S-1", commodity="wheat_flour", value_usd=10, shipped_on="2026-01-10")
    wheat = shipment("e-2", "S-2", commodity="wheat", value_usd=30, shipped_on="2026-01-10")
    states = {3: state_of(PLAN, [flour]), 7: state_of(PLAN, [wheat])}
    got = read(PLAN.indicator("flour_export_share_ratio"), states, AT)
    assert got.value == Decimal("0.25")
    assert got.components == {"numerator": Decimal(10), "denominator": Decimal(40)}
    assert got.partition_components == {
        3: {"numerator": Decimal(10), "denominator": Decimal(10)},
        7: {"numerator": Decimal(0), "denominator": Decimal(30)},
    }


def test_growth_is_taken_after_adding_partitions() -> None:
    """Current 30 + 0 over previous 10 + 10: 30 / 20 - 1 = 0.5 (one partition alone has none)."""
    a = [
        shipment("e-1", "S-1", tonnes=30, shipped_on="2026-02-01"),
        shipment("e-2", "S-2", tonnes=10, shipped_on="2025-02-01"),
    ]
    b = [shipment("e-3", "S-3", tonnes=10, shipped_on="2025-01-15")]
    got = read(
        PLAN.indicator("road_freight_growth_ratio"),
        {0: state_of(PLAN, a), 1: state_of(PLAN, b)},
        AT,
    )
    assert got.value == Decimal("0.5")
    assert got.partition_components[1] == {"current": Decimal(0), "previous": Decimal(10)}


def test_project_counts_add_across_partitions() -> None:
    """Two live projects in one partition and a live and a cancelled one in another: 3 live."""
    s0 = state_of(PLAN, [milestone("m-1", "P-1", investment_usd=5), milestone("m-2", "P-2")])
    s1 = state_of(
        PLAN,
        [milestone("m-3", "P-3", investment_usd=7), milestone("m-4", "P-4", stage="cancelled")],
    )
    count = read(PLAN.indicator("industrial_projects"), {0: s0, 1: s1}, AT)
    worth = read(PLAN.indicator("industrial_projects_value_usd"), {0: s0, 1: s1}, AT)
    assert count.value == Decimal(3)
    assert worth.value == Decimal(12)
    assert count.partition_components == {0: {"count": Decimal(2)}, 1: {"count": Decimal(1)}}
