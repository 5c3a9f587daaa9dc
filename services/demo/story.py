"""The demo's story: the roadmap from the article, told as upstream events. Pure and seeded.

``story(seed)`` returns every message the simulated upstream systems send, in event-time order:
- the project office registers 14 joint projects worth USD 277.5 M at signing (January 2025):
  11 joint ventures already operational (tractors and combine harvesters among them) and three
  new plants that go from agreed to operational over 2025-2028; every project's status is
  re-confirmed every two months;
- employment agencies report net hiring monthly, about 30 jobs a month towards 1,800, except a
  slump from June 2026 to March 2027 (so ``RoadmapTargetBehind`` fires for jobs created) and a
  catch-up afterwards (so it resolves late in 2027);
- customs and rail report shipments between Kazakhstan and Belarus from January 2024 (so
  year-over-year growth has a base): road freight about 600,000 t in 2024 growing 19% a year,
  and flour about 10.2% of the value of Kazakh exports to Belarus;
- a few bad messages (about 1%, each with a different defect) and exact re-sends, so the DLQ and
  dedup counters move.
"""

from __future__ import annotations

import calendar
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from contracts.events import EventType

STORY_START = date(2024, 1, 1)
STORY_END = date(2029, 12, 31)
SIGNING = date(2025, 1, 1)
"""The project office registers the portfolio, and the first jobs are reported, that morning."""
MONTHLY_JOBS = 30
PRELIMINARY_JOBS = 45
"""Announced at the signing: keeps jobs ahead of the trajectory until January's report."""
SLUMP = (date(2026, 6, 1), date(2027, 3, 1))
"""Months (first day) whose hiring falls to a trickle."""
CATCH_UP = (date(2027, 4, 1), date(2028, 3, 1))
ROAD_TONNES_2024 = 600_000
GROWTH = Decimal("1.19")
FLOUR_SHARE = Decimal("0.102")
KZ_BY_MONTHLY_VALUE_USD = 40_000_000


class DemoMessage(NamedTuple):
    """One upstream message: when it happens (event time), its type's topic, its bytes."""

    at: datetime
    event_type: EventType
    body: bytes
    key: bytes
    """The upstream system's key: the shipment or project it is about."""
    note: str = ""
    """Why the message is unusual (a defect, a re-send); empty for an ordinary one."""


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    name: str
    sector: str
    joint_venture: bool
    investment_usd: int
    planned_jobs: int
    stages: tuple[tuple[date, str], ...]


def _venture(ident: str, name: str, sector: str, *, usd: int, jobs: int, since: date) -> Project:
    """A joint venture already operational at the signing."""
    return Project(f"jv-{ident}", name, sector, True, usd, jobs, ((since, "operational"),))


def _plant(
    ident: str, name: str, sector: str, *, usd: int, jobs: int, dates: tuple[date, ...]
) -> Project:
    """A new plant: agreed, financed, under construction, operational on ``dates``."""
    stages = ("agreed", "financed", "construction", "operational")
    return Project(
        f"plant-{ident}", name, sector, False, usd, jobs, tuple(zip(dates, stages, strict=True))
    )


_MACHINES, _FOOD = "agricultural_machinery", "food_processing"
PROJECTS: tuple[Project, ...] = (
    _venture(
        "tractors-kostanay",
        "Tractor assembly, Kostanay",
        _MACHINES,
        usd=32_000_000,
        jobs=220,
        since=date(2024, 6, 1),
    ),
    _venture(
        "combines-petropavl",
        "Combine harvester assembly, Petropavl",
        _MACHINES,
        usd=28_500_000,
        jobs=190,
        since=date(2024, 4, 1),
    ),
    _venture(
        "trucks-astana",
        "Truck assembly, Astana",
        "automotive",
        usd=24_000_000,
        jobs=160,
        since=date(2023, 9, 1),
    ),
    _venture(
        "buses-almaty",
        "City buses, Almaty",
        "automotive",
        usd=18_000_000,
        jobs=120,
        since=date(2023, 11, 1),
    ),
    _venture(
        "lifts-karaganda",
        "Lifts and elevators, Karaganda",
        "construction_materials",
        usd=9_000_000,
        jobs=70,
        since=date(2024, 2, 1),
    ),
    _venture(
        "dairy-pavlodar",
        "Dairy processing, Pavlodar",
        _FOOD,
        usd=15_500_000,
        jobs=110,
        since=date(2024, 5, 1),
    ),
    _venture(
        "meat-shymkent",
        "Meat processing, Shymkent",
        _FOOD,
        usd=12_000_000,
        jobs=90,
        since=date(2024, 7, 1),
    ),
    _venture(
        "fertiliser-taraz",
        "Fertiliser blending, Taraz",
        "chemicals",
        usd=16_000_000,
        jobs=80,
        since=date(2024, 3, 1),
    ),
    _venture(
        "pharma-almaty",
        "Generic medicines, Almaty",
        "pharmaceuticals",
        usd=14_000_000,
        jobs=95,
        since=date(2024, 8, 1),
    ),
    _venture(
        "tyres-aktobe",
        "Tyres for farm machinery, Aktobe",
        "chemicals",
        usd=10_500_000,
        jobs=75,
        since=date(2024, 1, 15),
    ),
    _venture(
        "textiles-turkestan",
        "Cotton textiles, Turkestan",
        "textiles",
        usd=8_000_000,
        jobs=90,
        since=date(2024, 9, 1),
    ),
    _plant(
        "components-kokshetau",
        "Agricultural machinery components, Kokshetau",
        _MACHINES,
        usd=35_000_000,
        jobs=260,
        dates=(date(2025, 3, 10), date(2025, 10, 1), date(2026, 4, 1), date(2027, 9, 1)),
    ),
    _plant(
        "flour-kostanay",
        "Flour milling and pasta, Kostanay",
        _FOOD,
        usd=30_000_000,
        jobs=150,
        dates=(date(2025, 5, 20), date(2025, 12, 1), date(2026, 6, 1), date(2028, 3, 1)),
    ),
    _plant(
        "transformers-ekibastuz",
        "Power transformers, Ekibastuz",
        "energy",
        usd=25_000_000,
        jobs=90,
        dates=(date(2025, 9, 15), date(2026, 5, 1), date(2026, 11, 1), date(2028, 10, 1)),
    ),
)
"""Investments add up to USD 277.5 M and planned jobs to 1,800, as in the article."""

_KZ_TO_BY = ("wheat", "barley", "meat", "fertiliser")
_BY_TO_KZ = ("tractors", "combine_harvesters", "dairy", "meat")


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _months(first: date, last: date) -> list[date]:
    months, current = [], first.replace(day=1)
    while current <= last:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


def _envelope(
    event_id: str, event_type: EventType, at: datetime, source: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type.value,
        "schema_version": 1,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "source": source,
        "data": data,
    }


def _message(event: dict[str, Any], note: str = "") -> DemoMessage:
    at = datetime.fromisoformat(event["occurred_at"])
    data = event["data"]
    key = str(data.get("shipment_id") or data.get("project_id", "")).encode()
    return DemoMessage(at, EventType(event["type"]), json.dumps(event).encode(), key, note)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` in ``parts`` random non-negative integers that add up exactly."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    scale = sum(weights)
    shares = [int(total * w / scale) for w in weights]
    shares[rng.randrange(parts)] += total - sum(shares)
    return shares


def _project_events(rng: random.Random) -> list[dict[str, Any]]:
    events = []
    for project in PROJECTS:
        # Stages reached before the signing are registered at the signing, with their dates.
        reports = [(max(day, SIGNING), stage, day) for day, stage in project.stages]
        stage_changes = [(max(day, SIGNING), stage, day) for day, stage in project.stages]
        # Status re-confirmed every two months (the project office's register), staggered.
        offset = rng.randrange(0, 60)
        day = SIGNING + timedelta(days=offset)
        while day <= STORY_END:
            current = [(s, reached) for known, s, reached in stage_changes if known <= day]
            if current:
                stage, reached = current[-1]
                reports.append((day, stage, reached))
            day += timedelta(days=61)
        for number, (day, stage, reached) in enumerate(sorted(reports)):
            events.append(
                _envelope(
                    f"po-{project.project_id}-{number:03d}",
                    EventType.PROJECT_MILESTONE,
                    _at(day, 10),
                    "project-office",
                    {
                        "project_id": project.project_id,
                        "name": project.name,
                        "sector": project.sector,
                        "joint_venture": project.joint_venture,
                        "investment_usd": str(project.investment_usd),
                        "stage": stage,
                        "planned_jobs": project.planned_jobs,
                        "reached_on": reached.isoformat(),
                    },
                )
            )
    return events


def _monthly_jobs(month: date) -> int:
    if month == date(2025, 1, 1):
        return 2 * MONTHLY_JOBS  # hired at signing: reported a month ahead of the trajectory
    if SLUMP[0] <= month <= SLUMP[1]:
        return 4
    if CATCH_UP[0] <= month <= CATCH_UP[1]:
        return 57  # closes the gap by autumn 2027 with a margin, so the alert resolves once
    return MONTHLY_JOBS


def _hiring_report(
    project: Project, period: str, jobs: int, reported: datetime, event_id: str
) -> dict[str, Any]:
    return _envelope(
        event_id,
        EventType.HIRING_REPORT,
        reported,
        "employment-agency",
        {
            "project_id": project.project_id,
            "period": period,
            "jobs_created": jobs,
            "reported_on": reported.date().isoformat(),
        },
    )


def _hiring_events(rng: random.Random) -> list[dict[str, Any]]:
    """Each month's report on the 5th of the next; January 2025 also has a preliminary report
    at the signing (the jobs announced there), which the regular one then corrects."""
    events = []
    preliminary = _split(PRELIMINARY_JOBS, len(PROJECTS), rng)
    for project, jobs in zip(PROJECTS, preliminary, strict=True):
        event_id = f"ea-{project.project_id}-2025-01-preliminary"
        events.append(_hiring_report(project, "2025-01", jobs, _at(SIGNING, 10), event_id))
    for month in _months(date(2025, 1, 1), STORY_END):
        reported = _at((month + timedelta(days=32)).replace(day=5), 8)
        period = f"{month:%Y-%m}"
        shares = _split(_monthly_jobs(month), len(PROJECTS), rng)
        for project, jobs in zip(PROJECTS, shares, strict=True):
            event_id = f"ea-{project.project_id}-{period}"
            events.append(_hiring_report(project, period, jobs, reported, event_id))
    return events


def _shipment(
    number: int,
    day: date,
    leg: tuple[str, str, str],
    *,
    commodity: str,
    tonnes: Decimal,
    value: Decimal,
) -> dict[str, Any]:
    mode, origin, destination = leg
    source = "kz-customs" if origin == "KZ" else "by-customs"
    if mode == "rail":
        source = "kz-rail" if origin == "KZ" else "by-rail"
    return _envelope(
        f"{source}-{day:%Y}-{number:06d}",
        EventType.TRADE_SHIPMENT,
        _at(day - timedelta(days=1), 22),  # pre-declared the evening before departure
        source,
        {
            "shipment_id": f"{source.upper()}-{number:06d}",
            "origin": origin,
            "destination": destination,
            "mode": mode,
            "commodity": commodity,
            "tonnes": str(tonnes),
            "value_usd": str(value),
            "shipped_on": day.isoformat(),
        },
    )


def _shipment_events(rng: random.Random) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    number = 0
    for month in _months(STORY_START, STORY_END):
        years = month.year - STORY_START.year
        road_tonnes = Decimal(ROAD_TONNES_2024) / 12 * GROWTH**years
        road_tonnes *= Decimal(str(rng.uniform(0.99, 1.01)))
        days = calendar.monthrange(month.year, month.month)[1]
        # 16 road consignments (half each way), 6 by rail, spread evenly over the month.
        legs = [("road", "KZ", "BY")] * 8 + [("road", "BY", "KZ")] * 8
        legs += [("rail", "KZ", "BY")] * 3 + [("rail", "BY", "KZ")] * 3
        road = [int(road_tonnes / 16)] * 16  # consignments of a month weigh about the same
        kz_by_value = Decimal(KZ_BY_MONTHLY_VALUE_USD) * GROWTH**years
        flour_value = kz_by_value * (FLOUR_SHARE + Decimal(str(rng.uniform(-0.004, 0.004))))
        kz_by = [i for i, leg in enumerate(legs) if leg[1] == "KZ"]
        flour_legs = {0, 4}  # early in the month: the share never dips at a year's start
        other_values = _split(int(kz_by_value - flour_value), len(kz_by) - len(flour_legs), rng)
        flour_values = _split(int(flour_value), len(flour_legs), rng)
        for index, (mode, origin, destination) in enumerate(legs):
            number += 1
            day = month + timedelta(days=min(days - 1, int(index * days / len(legs))))
            rail = Decimal(rng.randrange(2_000, 6_000))
            tonnes = Decimal(road[index]) if mode == "road" else rail
            if index in flour_legs:
                commodity, value = "wheat_flour", Decimal(flour_values.pop())
            elif origin == "KZ":
                commodity, value = rng.choice(_KZ_TO_BY), Decimal(other_values.pop())
            else:
                commodity = rng.choice(_BY_TO_KZ)
                value = (tonnes * rng.randrange(400, 3_000)).quantize(Decimal(1))
            leg = (mode, origin, destination)
            events.append(
                _shipment(number, day, leg, commodity=commodity, tonnes=tonnes, value=value)
            )
    return events


_DEFECTS: tuple[tuple[str, Any], ...] = (
    ("negative tonnes", lambda e: e["data"].update(tonnes="-12.5")),
    ("unknown transport mode", lambda e: e["data"].update(mode="teleport")),
    ("impossible date", lambda e: e["data"].update(shipped_on="2025-02-30")),
    ("missing field", lambda e: e["data"].pop("origin")),
    ("count sent as text", lambda e: e["data"].update(jobs_created="12")),
    ("month 13", lambda e: e["data"].update(period="2026-13")),
)


def _spoil(event: dict[str, Any], number: int) -> tuple[dict[str, Any], str]:
    """A copy of ``event`` with a defect ingest must reject (one that fits its type)."""
    spoiled = json.loads(json.dumps(event))
    spoiled["event_id"] += "-bad"
    hiring = event["type"] == EventType.HIRING_REPORT.value
    choices = [d for d in _DEFECTS if ("jobs" in d[0] or "13" in d[0]) == hiring]
    if event["type"] == EventType.PROJECT_MILESTONE.value:
        choices = [("stage unknown", lambda e: e["data"].update(stage="dreaming"))]
    name, damage = choices[number % len(choices)]
    damage(spoiled)
    return spoiled, f"invalid: {name}"


def story(seed: int = 2025) -> list[DemoMessage]:
    """Every message of the story, ordered by event time (then as generated)."""
    rng = random.Random(seed)  # noqa: S311 - made-up data that must repeat, not a secret
    events = _project_events(rng) + _hiring_events(rng) + _shipment_events(rng)
    # The story ends with the roadmap: later messages (December's hiring, reported in January)
    # would move the roadmap clock past the deadline and close every indicator's account.
    end = _at(STORY_END, 23).isoformat().replace("+00:00", "Z")
    events = [e for e in events if e["occurred_at"] <= end]
    events.sort(key=lambda e: e["occurred_at"])
    messages: list[DemoMessage] = []
    for number, event in enumerate(events):
        messages.append(_message(event))
        if number % 97 == 41:  # about 1%: a spoiled copy, rejected to the DLQ
            spoiled, note = _spoil(event, number)
            messages.append(_message(spoiled, note))
        elif number % 61 == 7:  # an exact re-send, dropped as a duplicate
            messages.append(messages[-1]._replace(note="re-sent"))
    return messages
