"""The demo's story (services/demo/story.py): its messages, its portfolio, and the roadmap it tells.

The last part replays the story through the real fold, readings and alert conditions, the way
the metrics and alerts services see it on the event clock: messages are folded in order and
each checkpoint is evaluated when the stream reaches it, with only the events that occurred
before it. Expected figures are worked out by hand (jobs, trajectories) or recomputed here
from the decoded events (flour share, road freight growth), never taken from the code under
test.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from contracts.codec import Accepted, Rejected, RejectReason, decode_event
from contracts.events import (
    EventType,
    HiringReportEvent,
    ProjectMilestoneEvent,
    ProjectStage,
    TradeShipmentEvent,
    TransportMode,
)
from contracts.keys import AnyEvent
from contracts.roadmap import load_roadmap
from services.alerts.board import IndicatorView
from services.alerts.conditions import indicator_conditions
from services.demo.story import DemoMessage, story
from services.metrics.fold import BreakdownLabels, PartitionState, apply
from services.metrics.plan import compile_roadmap
from services.metrics.readings import Reading, read
from tests.unit.test_metrics_builders import REPO

SEED = 2025
ROADMAP = load_roadmap(REPO / "deploy" / "roadmap.yaml")
LABELS = BreakdownLabels(corridor=("KZ", "BY"), commodities=frozenset(), sectors=frozenset())
ALERTING = {"RoadmapTargetBehind", "RoadmapDeadlineMissed", "RoadmapIndicatorStale"}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# On track: from the signing (once the portfolio is registered that morning) to mid-2026, and
# from March 2028 (after the catch-up) to the end of the story.
ON_TRACK = (
    utc(2025, 1, 1, 12),
    utc(2025, 1, 15, 12),
    utc(2025, 4, 1),
    utc(2025, 7, 5, 9),
    utc(2025, 10, 20, 18),
    utc(2025, 12, 31, 23),
    utc(2026, 1, 1),
    utc(2026, 3, 31, 18),
    utc(2026, 6, 30, 18),
    utc(2028, 3, 1),
    utc(2028, 6, 15, 12),
    utc(2028, 12, 31, 23),
    utc(2029, 1, 1, 6),
    utc(2029, 6, 30, 12),
    utc(2029, 12, 15, 12),
    utc(2029, 12, 31, 23),
)
IN_THE_SLUMP = (utc(2026, 11, 15, 12), utc(2027, 6, 15, 12))
END_OF_2025 = utc(2025, 12, 31, 23)
"""Every 2025 shipment is declared by then (the last on December 30 at 22:00)."""
END_OF_2026 = utc(2026, 12, 31, 23)
# After the catch-up lifts jobs_created over its threshold (the October 2027 report on
# November 5), until the end of the catch-up.
AFTER_RECOVERY = tuple(
    utc(2027, 11, 6) + timedelta(hours=6 * n)
    for n in range((utc(2028, 3, 1) - utc(2027, 11, 6)) // timedelta(hours=6))
)
CHECKPOINTS = sorted({*ON_TRACK, *IN_THE_SLUMP, END_OF_2025, END_OF_2026, *AFTER_RECOVERY})


@dataclass(frozen=True)
class Checkpoint:
    readings: dict[str, Reading]
    conditions: set[tuple[str, str]]
    """(indicator, alertname) of every condition holding at the checkpoint."""


@pytest.fixture(scope="module")
def messages() -> list[DemoMessage]:
    return story(SEED)


@pytest.fixture(scope="module")
def decoded(messages: list[DemoMessage]) -> list[tuple[DemoMessage, Accepted | Rejected]]:
    return [(m, decode_event(m.body, expected_type=m.event_type)) for m in messages]


@pytest.fixture(scope="module")
def valid_events(
    decoded: list[tuple[DemoMessage, Accepted | Rejected]],
) -> list[AnyEvent]:
    """The accepted events, each event id once (re-sends are exact copies)."""
    seen: dict[str, AnyEvent] = {}
    for _, result in decoded:
        if isinstance(result, Accepted):
            seen.setdefault(result.event.event_id, result.event)
    return list(seen.values())


@pytest.fixture(scope="module")
def replay(messages: list[DemoMessage]) -> dict[datetime, Checkpoint]:
    """The story through one partition's fold, evaluated at every checkpoint."""
    plan = compile_roadmap(ROADMAP)
    state = PartitionState(plan, LABELS)
    results: dict[datetime, Checkpoint] = {}
    pending = iter(messages)
    upcoming = next(pending, None)
    for at in CHECKPOINTS:
        while upcoming is not None and upcoming.at < at:
            result = decode_event(upcoming.body, expected_type=upcoming.event_type)
            if isinstance(result, Accepted):
                apply(state, result.event)
            upcoming = next(pending, None)
        readings: dict[str, Reading] = {}
        conditions: set[tuple[str, str]] = set()
        for indicator_plan in plan.indicators:
            reading = read(indicator_plan, {0: state}, at)
            indicator = indicator_plan.indicator
            readings[indicator.id] = reading
            view = IndicatorView(reading.value, reading.last_event_at, at, 1, 1)
            for condition in indicator_conditions(ROADMAP.roadmap, indicator, view, at):
                conditions.add((indicator.id, condition.alertname.value))
        results[at] = Checkpoint(readings, conditions)
    return results


def _body(message: DemoMessage) -> dict[str, Any]:
    parsed = json.loads(message.body)
    assert isinstance(parsed, dict)
    return parsed


# -- the messages ----------------------------------------------------------------------------


def test_ordinary_and_resent_messages_decode_as_their_topic_type(
    decoded: list[tuple[DemoMessage, Accepted | Rejected]],
) -> None:
    """Every message not marked invalid is accepted by the real decoder as its own type."""
    valid = [(m, r) for m, r in decoded if not m.note.startswith("invalid")]
    assert len(valid) > 2_500
    refused = [(m.note, r) for m, r in valid if not isinstance(r, Accepted)]
    assert refused == []
    assert all(isinstance(r, Accepted) and r.event.type is m.event_type for m, r in valid)


def test_spoiled_messages_are_rejected_for_their_schema(
    decoded: list[tuple[DemoMessage, Accepted | Rejected]],
) -> None:
    """Each "invalid: ..." message is rejected with reason schema; about 1% are spoiled."""
    spoiled = [(m, r) for m, r in decoded if m.note.startswith("invalid: ")]
    assert 0.005 * len(decoded) <= len(spoiled) <= 0.02 * len(decoded)
    reasons = {(m.note, r.reason if isinstance(r, Rejected) else "accepted") for m, r in spoiled}
    assert {reason for _, reason in reasons} == {RejectReason.SCHEMA}
    # Each event type gets defects of its own kind, several different ones in all.
    assert len({note for note, _ in reasons}) >= 5
    assert {m.event_type for m, _ in spoiled} == set(EventType)


def test_notes_are_empty_invalid_or_resent(messages: list[DemoMessage]) -> None:
    """A message is ordinary (no note), spoiled ("invalid: ...") or an exact re-send."""
    odd = [m.note for m in messages if m.note and not m.note.startswith("invalid: ")]
    assert set(odd) == {"re-sent"}


def test_resends_are_byte_identical_to_the_message_before(messages: list[DemoMessage]) -> None:
    """A re-send repeats the previous (ordinary) message exactly: bytes, key, type and time."""
    resent = [i for i, m in enumerate(messages) if m.note == "re-sent"]
    assert len(resent) >= 10
    for index in resent:
        before, again = messages[index - 1], messages[index]
        assert before.note == ""
        assert (again.body, again.key, again.event_type, again.at) == (
            before.body,
            before.key,
            before.event_type,
            before.at,
        )


def test_event_ids_are_reused_only_by_exact_resends(messages: list[DemoMessage]) -> None:
    """Two messages with one event id have the same bytes, so ingest never sees a reused id."""
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for message in messages:
        bodies[_body(message)["event_id"]].add(message.body)
    assert [event_id for event_id, seen in bodies.items() if len(seen) > 1] == []


def test_keys_are_the_shipment_or_project_id(messages: list[DemoMessage]) -> None:
    """The upstream key is the shipment id of a shipment, the project id otherwise."""
    for message in messages:
        data = _body(message)["data"]
        if message.event_type is EventType.TRADE_SHIPMENT:
            assert message.key == data["shipment_id"].encode()
        else:
            assert message.key == data["project_id"].encode()


def test_types_and_times_match_the_envelope(messages: list[DemoMessage]) -> None:
    """Each message's event_type and at are its envelope's type and occurred_at."""
    for message in messages:
        body = _body(message)
        assert message.event_type.value == body["type"]
        assert message.at == datetime.fromisoformat(body["occurred_at"])
        assert message.at.tzinfo is not None


# -- seeds and time ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes(messages: list[DemoMessage]) -> None:
    """story(seed) is repeatable: the same seed yields the same messages, byte for byte."""
    assert story(SEED) == messages


def test_another_seed_gives_other_bytes(messages: list[DemoMessage]) -> None:
    """A different seed changes the story's bytes."""
    other = story(SEED + 1)
    assert [m.body for m in other] != [m.body for m in messages]


def test_messages_are_in_event_time_order(messages: list[DemoMessage]) -> None:
    """Messages are ordered by ``at`` (never going back in time)."""
    assert all(a.at <= b.at for a, b in pairwise(messages))


def test_story_spans_2024_to_the_roadmap_deadline(messages: list[DemoMessage]) -> None:
    """The first message is declared on 2023-12-31 or in 2024; none after 2029-12-31 23:00."""
    first, last = messages[0].at, messages[-1].at
    assert utc(2023, 12, 31) <= first < utc(2025, 1, 1)
    assert last <= utc(2029, 12, 31, 23)
    assert last >= utc(2029, 12, 1)  # the story runs to the end of the roadmap


# -- the portfolio ---------------------------------------------------------------------------


def test_portfolio_of_14_projects_worth_277_5_million_with_1800_jobs(
    valid_events: list[AnyEvent],
) -> None:
    """From the milestones: 14 projects, 11 operational joint ventures, USD 277.5 M, 1,800 jobs."""
    milestones = [e for e in valid_events if isinstance(e, ProjectMilestoneEvent)]
    by_project: dict[str, list[ProjectMilestoneEvent]] = defaultdict(list)
    for event in milestones:
        by_project[event.data.project_id].append(event)
    assert len(by_project) == 14
    # A project's investment, planned jobs and joint-venture flag never change.
    for events in by_project.values():
        assert len({(e.data.investment_usd, e.data.planned_jobs) for e in events}) == 1
        assert len({e.data.joint_venture for e in events}) == 1
    first = {p: events[0].data for p, events in by_project.items()}
    ventures = [p for p, data in first.items() if data.joint_venture]
    assert len(ventures) == 11
    # The joint ventures are operational in every milestone, from the signing on.
    assert {e.data.stage for p in ventures for e in by_project[p]} == {ProjectStage.OPERATIONAL}
    assert sum(data.investment_usd for data in first.values()) == Decimal(277_500_000)
    assert sum(data.planned_jobs for data in first.values()) == 1_800


def test_new_plants_go_from_agreed_to_operational(valid_events: list[AnyEvent]) -> None:
    """The three plants that are not joint ventures pass through every live stage in order."""
    stages: dict[str, list[ProjectStage]] = defaultdict(list)
    for event in sorted(
        (e for e in valid_events if isinstance(e, ProjectMilestoneEvent)),
        key=lambda e: (e.occurred_at, e.event_id),
    ):
        if not event.data.joint_venture:
            seen = stages[event.data.project_id]
            if not seen or seen[-1] is not event.data.stage:
                seen.append(event.data.stage)
    live = [
        ProjectStage.AGREED,
        ProjectStage.FINANCED,
        ProjectStage.CONSTRUCTION,
        ProjectStage.OPERATIONAL,
    ]
    assert len(stages) == 3
    assert all(seen == live for seen in stages.values())


# -- the roadmap, told through the fold and the alert conditions ------------------------------


@pytest.mark.parametrize("at", ON_TRACK, ids=lambda at: f"{at:%Y-%m-%dT%H}")
def test_no_indicator_alerts_while_on_track(
    replay: dict[datetime, Checkpoint], at: datetime
) -> None:
    """In 2025 to mid-2026 and March 2028 to the end, no indicator is behind, late or stale."""
    assert {c for c in replay[at].conditions if c[1] in ALERTING} == set()


@pytest.mark.parametrize(
    ("at", "elapsed_days", "jobs"),
    [
        # Reports for 2025-01 (60), 2025-02..2026-05 (16 x 30) and 2026-06..2026-10 (5 x 4).
        pytest.param(IN_THE_SLUMP[0], Decimal("683.5"), 60 + 16 * 30 + 5 * 4, id="2026-11-15"),
        # ... and 2026-11..2027-03 (5 x 4) and the catch-up's 2027-04..2027-05 (2 x 57).
        pytest.param(
            IN_THE_SLUMP[1], Decimal("895.5"), 60 + 16 * 30 + 10 * 4 + 2 * 57, id="2027-06-15"
        ),
    ],
)
def test_jobs_created_is_behind_in_the_slump_and_nothing_else(
    replay: dict[datetime, Checkpoint], at: datetime, elapsed_days: Decimal, jobs: int
) -> None:
    """Jobs created falls behind its linear trajectory (1,800 over 1,826 days, 10% tolerance)."""
    checkpoint = replay[at]
    assert checkpoint.conditions == {("jobs_created", "RoadmapTargetBehind")}
    reading = checkpoint.readings["jobs_created"]
    expected = Decimal(1800) * elapsed_days / Decimal(1826)
    assert reading.value == Decimal(jobs)
    assert abs(reading.expected - expected) < Decimal("0.000001")
    assert reading.value < expected * Decimal("0.9")


def test_jobs_created_stays_on_track_once_the_catch_up_resolves_it(
    replay: dict[datetime, Checkpoint],
) -> None:
    """From 2027-11-06 to the end of the catch-up, jobs_created is never behind again."""
    behind = [
        at
        for at in AFTER_RECOVERY
        if ("jobs_created", "RoadmapTargetBehind") in replay[at].conditions
    ]
    assert behind == []


def _tonnes_and_values(
    events: list[AnyEvent],
) -> tuple[dict[int, Decimal], dict[int, Decimal], dict[int, Decimal]]:
    """Per year shipped: road tonnes between KZ and BY; KZ->BY value; KZ->BY flour value."""
    road: dict[int, Decimal] = defaultdict(Decimal)
    kz_by: dict[int, Decimal] = defaultdict(Decimal)
    flour: dict[int, Decimal] = defaultdict(Decimal)
    for event in events:
        if not isinstance(event, TradeShipmentEvent):
            continue
        data, year = event.data, event.data.shipped_on.year
        if data.mode is TransportMode.ROAD and {data.origin, data.destination} == {"KZ", "BY"}:
            road[year] += data.tonnes
        if (data.origin, data.destination) == ("KZ", "BY"):
            kz_by[year] += data.value_usd or 0
            if data.commodity == "wheat_flour":
                flour[year] += data.value_usd or 0
    return road, kz_by, flour


def test_flour_share_of_2025_is_about_10_2_percent(
    replay: dict[datetime, Checkpoint], valid_events: list[AnyEvent]
) -> None:
    """The flour share over 2025 (year to date on December 31) is between 9.5% and 11%."""
    _, kz_by, flour = _tonnes_and_values(valid_events)
    share = flour[2025] / kz_by[2025]
    assert Decimal("0.095") <= share <= Decimal("0.11")
    value = replay[END_OF_2025].readings["flour_export_share_ratio"].value
    assert value is not None
    assert abs(value - share) < Decimal("1e-12")


def test_road_freight_growth_in_2026_is_about_19_percent(
    replay: dict[datetime, Checkpoint], valid_events: list[AnyEvent]
) -> None:
    """Road freight of 2026 over 2025 (year to date on December 31) grows by 15% to 23%."""
    road, _, _ = _tonnes_and_values(valid_events)
    growth = road[2026] / road[2025] - 1
    assert Decimal("0.15") <= growth <= Decimal("0.23")
    value = replay[END_OF_2026].readings["road_freight_growth_ratio"].value
    assert value is not None
    assert abs(value - growth) < Decimal("1e-12")


def test_road_freight_2024_is_about_600_thousand_tonnes(valid_events: list[AnyEvent]) -> None:
    """The base year: about 600,000 t of road freight in 2024 (1% noise a month)."""
    road, _, _ = _tonnes_and_values(valid_events)
    assert Decimal(585_000) <= road[2024] <= Decimal(606_000)


def test_hiring_reports_cover_every_project_each_month(valid_events: list[AnyEvent]) -> None:
    """Each month from 2025-01 to 2029-11 has one report per project (14 in all)."""
    periods: dict[str, set[str]] = defaultdict(set)
    for event in valid_events:
        if isinstance(event, HiringReportEvent):
            periods[event.data.period].add(event.data.project_id)
    months = {f"{y}-{m:02d}" for y in range(2025, 2030) for m in range(1, 13)} - {"2029-12"}
    assert set(periods) == months
    assert {len(projects) for projects in periods.values()} == {14}
