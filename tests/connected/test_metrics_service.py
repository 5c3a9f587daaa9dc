"""The metrics service against a real broker: exact numbers, restarts, and replicas in a group.

Every test has its own topic prefix and consumer groups. The numbers come from one hand-written
story (``_story``): a few projects, their hiring reports and some shipments, with a correction of
each kind, a cancelled project, a stage regression, a late older version (stale), data outside the
windows, and shipments without a value. What every indicator and breakdown must show at ``FIXED``
is worked out by hand next to the story (``VALUES``, ``COMPONENTS``, ...).

1. through ingest, exact numbers on /metrics and the KPI topic; 2. a SIGKILLed process replaced
by a new one gives the same numbers; 3. two replicas of one group add up to the whole; 4. /readyz
means replayed (expected to fail on the embedded broker, whose end offsets lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.records import KpiSnapshot
from contracts.roadmap.loader import load_roadmap
from contracts.roadmap.trajectory import TargetTrajectory
from contracts.topics import CANONICAL_EVENTS, KPI_SNAPSHOTS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.partitioning import partition_for_key
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import RealBroker, read_topic, unique_name
from tests.support.roadmap_events import (
    canonical_record,
    hiring,
    milestone,
    publish_canonical,
    shipment,
)
from tests.support.services import REPO, running_app, spawn_service
from tests.support.streams import Upstream, publish

ROADMAP_FILE = REPO / "deploy" / "roadmap.yaml"
ROADMAP = load_roadmap(ROADMAP_FILE)
INDICATORS = {indicator.id: indicator for indicator in ROADMAP.indicators}

FIXED = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
"""The evaluation time; also the newest ``occurred_at`` of the story (for ROADMAP_CLOCK=event)."""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _day(text: str) -> date:
    return date.fromisoformat(text)


# ---------------------------------------------------------------------------------------------
# The story and its numbers at FIXED (2026-06-15 12:00 UTC).

AGRI, FOOD = "agricultural_machinery", "food_processing"
JV, SOLO = True, False
KZ_BY, BY_KZ = ("KZ", "BY"), ("BY", "KZ")


Row = TypeVar("Row", bound=tuple[Any, ...])


def _numbered(rows: Iterable[Row]) -> list[tuple[int, Row]]:
    """Each row with its version: 1 for a key's (first column's) first row, 2 for its second."""
    seen: Counter[str] = Counter()
    numbered = []
    for row in rows:
        seen[row[0]] += 1
        numbered.append((seen[row[0]], row))
    return numbered


def _projects() -> list[Upstream]:
    """Milestones; each occurs at 09:00 on the given day, reached the day before."""
    rows: list[tuple[str, str, str, str, bool, int | str]] = [
        ("TRACTORS", "2025-02-01", "agreed", AGRI, JV, 55_000_000),
        ("TRACTORS", "2025-09-01", "operational", AGRI, JV, 60_000_000),
        ("COMBINES", "2025-03-10", "operational", AGRI, JV, 40_000_000),
        ("COMBINES", "2026-02-01", "construction", AGRI, JV, "40000000.5"),  # a regression
        ("DAIRY", "2025-04-01", "agreed", FOOD, SOLO, "12500000.25"),
        ("DAIRY", "2025-11-20", "financed", FOOD, SOLO, "12500000.25"),
        ("BUSES", "2025-05-05", "agreed", "automotive", JV, 30_000_000),
        ("BUSES", "2026-01-15", "cancelled", "automotive", JV, 0),
        ("SATELLITES", "2025-06-01", "operational", "aerospace", JV, 8_000_000),  # "other" sector
        ("MILL", "2025-07-07", "operational", FOOD, SOLO, 5_000_000),
    ]
    events = []
    for n, (project, day, stage, sector, jv, usd) in _numbered(rows):
        occurred = _at(f"{day}T09:00")
        events.append(
            milestone(
                f"pm-{project.lower()}-{n}",
                f"PRJ-{project}",
                occurred=occurred,
                stage=stage,
                sector=sector,
                joint_venture=jv,
                investment_usd=usd,
                reached_on=occurred.date() - timedelta(days=1),
            )
        )
    return events


def _hiring_reports() -> list[Upstream]:
    """Monthly net jobs per project, each reported at 08:00 on the given day."""
    rows = [
        ("TRACTORS", "2025-03", 40, "2025-04-05"),
        ("TRACTORS", "2025-03", 45, "2025-04-20"),  # correction
        ("TRACTORS", "2025-04", 30, "2025-05-05"),
        ("TRACTORS", "2024-12", 7, "2025-01-10"),  # before the roadmap start
        ("TRACTORS", "2026-07", 100, "2026-06-10"),  # announced early, after the evaluation day
        ("COMBINES", "2025-05", 25, "2025-06-05"),
        ("COMBINES", "2026-01", -5, "2026-02-05"),
        ("DAIRY", "2026-02", 12, "2026-03-20"),
        ("DAIRY", "2026-02", 20, "2026-03-05"),  # an older version arriving late: stale
        ("BUSES", "2025-06", 10, "2025-07-05"),
        ("SATELLITES", "2026-03", 8, "2026-04-05"),
        ("GHOST", "2025-08", 6, "2025-09-05"),  # no milestone: sector "unknown"
    ]
    return [
        hiring(
            f"hr-{project.lower()}-{period}-{n}",
            f"PRJ-{project}",
            period,
            jobs,
            occurred=_at(f"{day}T08:00"),
        )
        for n, (project, period, jobs, day) in _numbered(rows)
    ]


def _shipments() -> list[Upstream]:
    """Shipments; version n is reported at 12:00, n days after the shipping day."""
    rows: list[tuple[str, str, tuple[str, str], str, str, float | str, float | str | None]] = [
        ("FLOUR-2025", "2025-03-13", KZ_BY, "road", "wheat_flour", 22.5, 6525.75),
        ("TRACTORS-2025", "2025-05-20", ("by", "kz"), "road", "tractors", "120", 900_000),
        ("WHEAT-2025", "2025-08-01", KZ_BY, "road", "wheat", 300, 60_000),
        ("WHEAT-2024", "2024-11-15", KZ_BY, "road", "wheat", 500, 100_000),
        ("FLOUR-2026", "2026-02-10", KZ_BY, "road", "wheat_flour", 40, 12_000),
        ("FLOUR-2026", "2026-02-10", KZ_BY, "road", "wheat_flour", 42.5, "12750"),  # correction
        ("FLOUR-NOVALUE", "2026-03-05", KZ_BY, "road", "wheat_flour", 18, None),
        ("DAIRY-2026", "2026-06-14", BY_KZ, "road", "dairy", "75.25", 50_000),  # occurs at FIXED
        ("RAIL-TRACTORS", "2026-01-20", KZ_BY, "rail", "tractors", 200, 1_500_000),
        ("RAIL-COMBINES", "2025-04-01", BY_KZ, "rail", "combine_harvesters", 150, 2_000_000),
        ("MM-FLOUR", "2026-05-05", KZ_BY, "multimodal", "wheat_flour", 5, 1500),
        ("KZ-RU", "2026-02-01", ("KZ", "RU"), "road", "wheat", 1000, 200_000),
        ("UZ-KZ", "2025-05-01", ("UZ", "KZ"), "road", "cotton", 30, 45_000),
    ]
    return [
        shipment(
            f"sh-{ident.lower()}-{n}",
            f"SH-{ident}",
            occurred=_at(f"{day}T12:00") + timedelta(days=n),
            route=route,
            mode=mode,
            commodity=commodity,
            tonnes=tonnes,
            value_usd=usd,
            shipped_on=_day(day),
        )
        for n, (ident, day, route, mode, commodity, tonnes, usd) in _numbered(rows)
    ]


def _story() -> list[Upstream]:
    """35 events; versions of one key in order (the stale report after its newer version)."""
    return [*_projects(), *_hiring_reports(), *_shipments()]


STORY_EVENTS = 35

# Live projects (not cancelled, latest stage): TRACTORS operational 60,000,000; COMBINES
# construction 40,000,000.5; DAIRY financed 12,500,000.25; SATELLITES and MILL operational
# 8,000,000 and 5,000,000. BUSES is cancelled. Operational joint ventures: TRACTORS, SATELLITES.
# Jobs since 2025-01 up to June 2026: 45 (corrected from 40) + 30 + 25 - 5 + 12 (the late 20 is
# stale) + 10 + 8 + 6 = 131; 2024-12 (7) and 2026-07 (100) are outside.
# Road KZ<->BY since 2025-01-01: 22.5 + 120 + 300 + 42.5 (corrected from 40) + 18 + 75.25.
# Year to date (to the end of June): 2026 road KZ<->BY 42.5 + 18 + 75.25 = 135.75; 2025 22.5 + 120.
# Flour share of KZ->BY value in 2026: flour 12,750 + 1,500 (the 18 t without a value adds
# nothing) over all KZ->BY 12,750 + 1,500,000 + 1,500.
# The pace window ("recent", of the projected flows: jobs and road tonnes): the 180 days
# 2025-12-18 .. 2026-06-15. Jobs of 2026-01 (-5), 2026-02 (12) and 2026-03 (8): 15. Road
# KZ<->BY: 42.5 + 18 + 75.25 = 135.75.
COMPONENTS: dict[str, dict[str, Decimal]] = {
    "jobs_created": {"sum": Decimal(131), "recent": Decimal(15)},
    "industrial_projects": {"count": Decimal(5)},
    "industrial_projects_value_usd": {"sum": Decimal("125500000.75")},
    "joint_ventures_operational": {"count": Decimal(2)},
    "road_freight_tonnes": {"sum": Decimal("578.25"), "recent": Decimal("135.75")},
    "road_freight_growth_ratio": {"current": Decimal("135.75"), "previous": Decimal("142.5")},
    "flour_export_share_ratio": {"numerator": Decimal(14250), "denominator": Decimal(1514250)},
}
VALUES: dict[str, Decimal] = {
    "jobs_created": Decimal(131),
    "industrial_projects": Decimal(5),
    "industrial_projects_value_usd": Decimal("125500000.75"),
    "joint_ventures_operational": Decimal(2),
    "road_freight_tonnes": Decimal("578.25"),
    "road_freight_growth_ratio": Decimal("135.75") / Decimal("142.5") - 1,
    "flour_export_share_ratio": Decimal(14250) / Decimal(1514250),
}
TARGETS: dict[str, Decimal] = {
    "jobs_created": Decimal(1800),
    "industrial_projects": Decimal(14),
    "industrial_projects_value_usd": Decimal(277_500_000),
    "joint_ventures_operational": Decimal(11),
    "road_freight_tonnes": Decimal(3_004_000),
    "road_freight_growth_ratio": Decimal("0.19"),
    "flour_export_share_ratio": Decimal("0.102"),
}
LAST_EVENT: dict[str, datetime] = {
    "jobs_created": _at("2026-06-10T08:00"),  # the 2026-07 report counts in the slot's data
    "industrial_projects": _at("2026-02-01T09:00"),  # the regression (still a live stage)
    "industrial_projects_value_usd": _at("2026-02-01T09:00"),
    "joint_ventures_operational": _at("2026-02-01T09:00"),  # COMBINES left "operational"
    "road_freight_tonnes": FIXED,
    "road_freight_growth_ratio": FIXED,
    "flour_export_share_ratio": _at("2026-05-06T12:00"),  # newest KZ->BY shipment with a value
}
FREIGHT: dict[tuple[str, str, str], tuple[int, Decimal, Decimal]] = {
    # (direction, mode, commodity): (shipments, tonnes, value_usd)
    ("KZ_to_BY", "road", "wheat_flour"): (3, Decimal("83"), Decimal("19275.75")),
    ("KZ_to_BY", "road", "wheat"): (2, Decimal(800), Decimal(160_000)),
    ("BY_to_KZ", "road", "tractors"): (1, Decimal(120), Decimal(900_000)),
    ("BY_to_KZ", "road", "dairy"): (1, Decimal("75.25"), Decimal(50_000)),
    ("KZ_to_BY", "rail", "tractors"): (1, Decimal(200), Decimal(1_500_000)),
    ("BY_to_KZ", "rail", "combine_harvesters"): (1, Decimal(150), Decimal(2_000_000)),
    ("KZ_to_BY", "multimodal", "wheat_flour"): (1, Decimal(5), Decimal(1500)),
    ("other", "road", "wheat"): (1, Decimal(1000), Decimal(200_000)),
    ("other", "road", "other"): (1, Decimal(30), Decimal(45_000)),  # UZ->KZ cotton
}
PROJECTS: dict[str, tuple[int, Decimal]] = {
    # stage: (projects, investment_usd) by latest stage
    "operational": (3, Decimal(73_000_000)),
    "construction": (1, Decimal("40000000.5")),
    "financed": (1, Decimal("12500000.25")),
    "cancelled": (1, Decimal(0)),
}
JOBS: dict[str, Decimal] = {
    # every month counts here, by the project's latest sector
    AGRI: Decimal(45 + 30 + 7 + 100 + 25 - 5),
    FOOD: Decimal(12),
    "automotive": Decimal(10),
    "other": Decimal(8),
    "unknown": Decimal(6),
}
ENTITIES = {"trade.shipment": 12, "project.milestone": 6, "hiring.report": 10}
OUTCOMES = {
    ("project.milestone", "new"): 6,
    ("project.milestone", "correction"): 4,
    ("hiring.report", "new"): 10,
    ("hiring.report", "correction"): 1,
    ("hiring.report", "stale"): 1,
    ("trade.shipment", "new"): 12,
    ("trade.shipment", "correction"): 1,
}


def _floats(numbers: Mapping[str, Decimal]) -> dict[str, float]:
    return {key: float(number) for key, number in numbers.items()}


def _component_floats(components: Mapping[str, Mapping[str, Decimal]]) -> dict[str, float]:
    return {f"{i}/{c}": float(v) for i, parts in components.items() for c, v in parts.items()}


# ---------------------------------------------------------------------------------------------
# Scraping.

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
"""sample name -> sorted labels -> value."""


def _samples(text: str) -> Samples:
    found: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _by(samples: Samples, name: str, *labels: str) -> dict[str, float]:
    """``name``'s series keyed by the given labels' values joined with ``/``."""
    return {
        "/".join(dict(key)[label] for label in labels): value
        for key, value in samples.get(name, {}).items()
    }


def _nonzero(series: Mapping[str, float]) -> dict[str, float]:
    # A stage every project left keeps a series at 0; only the non-zero ones are the story.
    return {key: value for key, value in series.items() if value}


def _total(samples: Samples, name: str) -> float:
    return sum(samples.get(name, {}).values())


async def _scrape(base_url: str) -> Samples:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
        return _samples(response.text)


async def _until_folded(base_url: str, count: int, *, timeout: float = 60) -> Samples:
    """Scrape until ``count`` canonical events were folded (every outcome counted)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await _scrape(base_url)
        folded = _total(samples, "roadmap_metrics_events_total")
        if folded >= count or time.monotonic() > deadline:
            assert folded == count, f"{folded:.0f} canonical events folded, want {count}"
            return samples
        await asyncio.sleep(0.2)


SCORECARD = ("roadmap_indicator", "roadmap_evaluation_timestamp_seconds")
BREAKDOWNS = ("roadmap_freight_", "roadmap_projects", "roadmap_jobs", "roadmap_metrics_entities")


def _state_series(samples: Samples) -> dict[str, float]:
    """Every scorecard and breakdown series, as ``name{labels}`` -> value."""
    return {
        f"{name}{dict(labels)}": value
        for name, series in samples.items()
        if name.startswith(SCORECARD + BREAKDOWNS)
        for labels, value in series.items()
    }


def _breakdowns(
    samples: Samples, series: Callable[..., dict[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """The breakdown series by name, read with ``series`` (default: ``_by`` on ``samples``)."""
    read: Callable[..., dict[str, float]] = series or (lambda *args: _by(samples, *args))
    labels = ("direction", "mode", "commodity")
    return {
        "shipments": read("roadmap_freight_shipments", *labels),
        "tonnes": read("roadmap_freight_tonnes", *labels),
        "value_usd": read("roadmap_freight_value_usd", *labels),
        "projects": _nonzero(read("roadmap_projects", "stage")),
        "investment": _nonzero(read("roadmap_projects_investment_usd", "stage")),
        "jobs": read("roadmap_jobs", "sector"),
        "entities": read("roadmap_metrics_entities", "type"),
    }


def _expected_breakdowns() -> dict[str, dict[str, float]]:
    freight = {"/".join(key): row for key, row in FREIGHT.items()}
    return {
        "shipments": {key: float(n) for key, (n, _, _) in freight.items()},
        "tonnes": {key: float(tonnes) for key, (_, tonnes, _) in freight.items()},
        "value_usd": {key: float(usd) for key, (_, _, usd) in freight.items()},
        "projects": {stage: float(n) for stage, (n, _) in PROJECTS.items()},
        "investment": _nonzero({stage: float(usd) for stage, (_, usd) in PROJECTS.items()}),
        "jobs": _floats(JOBS),
        "entities": {event_type: float(n) for event_type, n in ENTITIES.items()},
    }


# ---------------------------------------------------------------------------------------------
# Running the services.


def _kafka(broker: RealBroker) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("t") + "."
    )


def _metrics_settings(kafka: KafkaSettings, group: str) -> MetricsSettings:
    return MetricsSettings(
        http_port=free_port(),
        group_id=group,
        kafka=kafka,
        log_format="text",
        snapshot_interval=2.0,
    )


def _fixed_clock() -> datetime:
    return FIXED


def _metrics_env(kafka: KafkaSettings, group: str) -> tuple[dict[str, str], str]:
    """Environment for ``roadmap-monitor run metrics`` on event time, and its base URL."""
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "METRICS_HTTP_PORT": str(port),
        "METRICS_GROUP_ID": group,
        "METRICS_LOG_FORMAT": "text",
        "ROADMAP_CLOCK": "event",
    }
    return env, f"http://127.0.0.1:{port}"


async def _latest_snapshots(kafka: KafkaSettings, *, timeout: float = 30) -> dict[str, KpiSnapshot]:
    """The newest whole-topic snapshot of each indicator, once each one shows ``VALUES``.

    Snapshots of one key share a partition, and ``read_topic`` returns each partition in offset
    order, so the last one read per key is the newest.
    """
    topic = kafka.topic_name(KPI_SNAPSHOTS)
    deadline = time.monotonic() + timeout
    while True:
        latest = {}
        for record in await read_topic(kafka.bootstrap_servers, topic):
            snapshot = KpiSnapshot.model_validate_json(record.value)
            if len(snapshot.partitions) == snapshot.partition_count:
                latest[snapshot.indicator] = snapshot
        current = {i: s.value for i, s in latest.items()}
        if current == VALUES or time.monotonic() > deadline:
            return latest
        await asyncio.sleep(1)


# ---------------------------------------------------------------------------------------------
# 1. Through ingest: exact values.


async def test_story_through_ingest_gives_hand_computed_scorecard_breakdowns_and_snapshots(
    broker: RealBroker,
) -> None:
    """The story's 35 upstream events go through ingest (in-process) to the canonical topic and
    are folded by metrics (in-process, evaluated at FIXED). /metrics then shows, for every
    indicator, the value, components, target, expected value (the roadmap trajectory at FIXED),
    progress ratio and freshness worked out by hand: latest version per key (corrections replace,
    a late older version is ignored), a cancelled project and a regressed stage out of the
    counts, windows (since start, year to date and the year before) on business dates, shipments
    without a value left out of value shares. Freight, projects and jobs breakdowns match too,
    and the KPI topic holds a snapshot per indicator over all partitions with the same numbers."""
    kafka = _kafka(broker)
    ingest = IngestSettings(
        http_port=free_port(), group_id=unique_name("ingest"), kafka=kafka, log_format="text"
    )
    metrics = _metrics_settings(kafka, unique_name("metrics"))
    started = time.monotonic()
    async with (
        running_app(create_ingest(ingest)),
        running_app(create_metrics(metrics, wall_clock=_fixed_clock)) as base_url,
    ):
        ready_s = time.monotonic() - started
        published = await publish(kafka, _story())
        samples = await _until_folded(base_url, STORY_EVENTS)
        folded_s = time.monotonic() - started - ready_s
        snapshots = await _latest_snapshots(kafka)
    canonical = await read_topic(
        kafka.bootstrap_servers, kafka.topic_name(CANONICAL_EVENTS), expect=STORY_EVENTS
    )

    def indicator_series(name: str) -> dict[str, float]:
        return _by(samples, f"roadmap_indicator_{name}", "indicator")

    expected = {
        i: TargetTrajectory(indicator).expected(FIXED) for i, indicator in INDICATORS.items()
    }
    print(
        f"\nthrough ingest: {len(published)} events, services ready in {ready_s:.1f}s, folded "
        f"{folded_s:.1f}s later over partitions {sorted({r.partition for r in canonical})}; "
        + ", ".join(f"{i}={float(v):.6g}" for i, v in VALUES.items())
    )
    assert len(canonical) == STORY_EVENTS
    assert {r.partition for r in canonical} == {0, 1, 2}, "the story should cover every partition"
    assert _nonzero(_by(samples, "roadmap_metrics_events_total", "type", "outcome")) == {
        f"{t}/{o}": float(n) for (t, o), n in OUTCOMES.items()
    }

    assert indicator_series("value") == _floats(VALUES)
    assert _by(samples, "roadmap_indicator_component", "indicator", "component") == (
        _component_floats(COMPONENTS)
    )
    assert indicator_series("target") == _floats(TARGETS)
    assert indicator_series("expected") == _floats(expected)
    assert indicator_series("progress_ratio") == {i: float(VALUES[i] / TARGETS[i]) for i in VALUES}
    assert indicator_series("last_event_timestamp_seconds") == {
        i: moment.timestamp() for i, moment in LAST_EVENT.items()
    }
    # Projected: every default indicator runs to 2029-12-31, and its 180-day window is whole.
    days_left = (date(2029, 12, 31) - FIXED.date()).days
    paces = {i: parts["recent"] / 180 for i, parts in COMPONENTS.items() if "recent" in parts}
    assert indicator_series("projected") == {
        i: float(VALUES[i] + pace * days_left) for i, pace in paces.items()
    }
    days_needed = {i: math.ceil((TARGETS[i] - VALUES[i]) / pace) for i, pace in paces.items()}
    assert indicator_series("projected_completion_timestamp_seconds") == {
        i: datetime.combine(
            FIXED.date() + timedelta(days=days), datetime.min.time(), tzinfo=UTC
        ).timestamp()
        for i, days in days_needed.items()
        # road tonnes: 3,004,000 t at 0.75 t a day is past the year 9999, as good as never
        if FIXED.date().toordinal() + days <= date.max.toordinal()
    }
    assert "road_freight_tonnes" in days_needed
    assert _total(samples, "roadmap_evaluation_timestamp_seconds") == FIXED.timestamp()
    # The trajectory by hand: linear over 1,826 days, of which 530.5 have passed; checkpoints
    # 0.5 at 2025-12-31 and 0.85 at 2026-12-31, 166.5 of those 365 days passed; flat ones.
    assert float(expected["jobs_created"]) == pytest.approx(1800 * 530.5 / 1826, rel=1e-12)
    assert float(expected["industrial_projects"]) == pytest.approx(
        14 * (0.5 + 0.35 * 166.5 / 365), rel=1e-12
    )
    assert expected["joint_ventures_operational"] == 11
    assert expected["road_freight_growth_ratio"] == Decimal("0.19")

    assert _breakdowns(samples) == _expected_breakdowns()

    assert set(snapshots) == set(VALUES), f"snapshots over all partitions for {sorted(snapshots)}"
    for indicator, snapshot in snapshots.items():
        summed: dict[str, Decimal] = defaultdict(Decimal)
        for parts in snapshot.partition_components.values():
            for name, amount in parts.items():
                summed[name] += amount
        assert (
            snapshot.value,
            snapshot.components,
            snapshot.expected,
            snapshot.target,
            snapshot.evaluated_at,
            snapshot.last_event_at,
            snapshot.partitions,
            snapshot.partition_count,
            sorted(snapshot.partition_components),
            dict(summed),
        ) == (
            VALUES[indicator],
            COMPONENTS[indicator],
            expected[indicator],
            TARGETS[indicator],
            FIXED,
            LAST_EVENT[indicator],
            [0, 1, 2],
            3,
            [0, 1, 2],
            COMPONENTS[indicator],
        ), indicator


# ---------------------------------------------------------------------------------------------
# 2. Restart: the same numbers.

BULK = 30_000


def _bulk_shipments(count: int) -> list[Upstream]:
    """``count`` UZ->TJ rail wheat shipments of 1.5 t without a value, before FIXED: they touch
    no indicator, only the freight breakdown ``other/rail/wheat``."""
    first = _at("2025-07-01T00:00")
    return [
        shipment(
            f"bulk-{n}",
            f"BULK-{n}",
            occurred=first + timedelta(seconds=n),
            route=("UZ", "TJ"),
            mode="rail",
            commodity="wheat",
            tonnes="1.5",
            shipped_on=_day("2025-06-30"),
        )
        for n in range(count)
    ]


async def _until_ready(
    base_url: str, process: subprocess.Popen[bytes], *, timeout: float = 120
) -> list[str]:
    """Poll /readyz every 20 ms until 200; return each distinct 'state' detail seen before."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            assert process.poll() is None, f"metrics exited with {process.returncode}"
            assert time.monotonic() < deadline, f"not ready after {timeout}s: {seen[-3:]}"
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return seen
                detail = f"{response.status_code} {response.json()['checks']['state']['detail']}"
                if not seen or seen[-1] != detail:
                    seen.append(detail)
            await asyncio.sleep(0.02)


async def test_restart_after_sigkill_replays_the_topic_to_identical_numbers(
    broker: RealBroker, tmp_path: Path
) -> None:
    """The canonical topic holds the story after 30,000 other shipments (put there with ingest's
    publisher and partitioning). ``roadmap-monitor run metrics`` (ROADMAP_CLOCK=event) replays
    it, is SIGKILLed, and a new process in the same consumer group (as a restarted replica would
    be: its configuration names the group) replays it again: every scorecard and breakdown
    series is identical, and equal to the hand-computed numbers, evaluated at the newest
    occurred_at (FIXED). The same group proves nothing depends on committed offsets (metrics
    never commits) and costs a slower join, while the broker drops the killed member. While the
    backlog is replayed, /readyz answers 503 naming the partitions being replayed; each process
    is scraped once ready and every record is folded."""
    kafka = _kafka(broker)
    await ensure_topics(kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])
    total = await publish_canonical(kafka, [*_bulk_shipments(BULK), *_story()])
    group = unique_name("metrics")

    env, base_url = _metrics_env(kafka, group)
    started = time.monotonic()
    with spawn_service("metrics", env, log_path=tmp_path / "metrics-1.log") as process:
        first_states = await _until_ready(base_url, process)
        first_s = time.monotonic() - started
        # /readyz can come one record batch early on the embedded broker (test 4): wait for all
        before = await _until_folded(base_url, total)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    env, base_url = _metrics_env(kafka, group)
    restarted = time.monotonic()
    with spawn_service("metrics", env, log_path=tmp_path / "metrics-2.log") as process:
        second_states = await _until_ready(base_url, process)
        second_s = time.monotonic() - restarted
        after = await _until_folded(base_url, total)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0

    series_before, series_after = _state_series(before), _state_series(after)
    replaying = [s for s in first_states + second_states if s.startswith("503 replaying")]
    print(
        f"\nrestart: {total} canonical events; first process ready in {first_s:.1f}s, after "
        f"SIGKILL the next one (same group) in {second_s:.1f}s; /readyz said "
        f"{replaying[:1] or first_states} then {len(replaying) - 1} more replay answers; "
        f"{len(series_before)} scorecard and breakdown series compared"
    )
    for samples in (before, after):
        assert _total(samples, "roadmap_metrics_events_total") == total
        assert _total(samples, "roadmap_metrics_partitions_owned") == 3
    assert series_after == series_before
    assert _by(before, "roadmap_indicator_value", "indicator") == _floats(VALUES)
    assert _by(before, "roadmap_indicator_component", "indicator", "component") == (
        _component_floats(COMPONENTS)
    )
    assert _total(before, "roadmap_evaluation_timestamp_seconds") == FIXED.timestamp()
    breakdowns, bulk = _expected_breakdowns(), "other/rail/wheat"
    breakdowns["shipments"][bulk] = BULK
    breakdowns["tonnes"][bulk] = 1.5 * BULK
    breakdowns["value_usd"][bulk] = 0
    breakdowns["entities"]["trade.shipment"] += BULK
    assert _breakdowns(before) == breakdowns
    for states in (first_states, second_states):
        assert any(s.startswith("503 replaying partitions") for s in states), states


# ---------------------------------------------------------------------------------------------
# 3. Two replicas in one group.


@contextlib.asynccontextmanager
async def _replicas(kafka: KafkaSettings, group: str, count: int) -> AsyncIterator[list[str]]:
    """``count`` in-process metrics instances of one group, started one after the other."""
    async with contextlib.AsyncExitStack() as stack:
        urls = []
        for _ in range(count):
            app = create_metrics(_metrics_settings(kafka, group), wall_clock=_fixed_clock)
            urls.append(await stack.enter_async_context(running_app(app)))
        yield urls


async def _until_split(urls: list[str], *, timeout: float = 60) -> list[Samples]:
    """Scrape every replica until all are ready, none replays, they own 3 partitions between
    them (each at least one), and their series stayed the same for a second (/readyz can come
    one record batch early on the embedded broker: test 4)."""
    deadline = time.monotonic() + timeout
    previous: list[dict[str, float]] = []
    while True:
        async with httpx.AsyncClient(timeout=5) as client:
            ready = [(await client.get(f"{url}/readyz")).status_code == 200 for url in urls]
        scraped = [await _scrape(url) for url in urls]
        owned = [_total(s, "roadmap_metrics_partitions_owned") for s in scraped]
        replaying = sum(_total(s, "roadmap_metrics_partitions_replaying") for s in scraped)
        current = [_state_series(s) for s in scraped]
        if all(ready) and sum(owned) == 3 and min(owned) >= 1 and not replaying:
            if current == previous:
                return scraped
            previous = current
        else:
            previous = []
        assert time.monotonic() < deadline, f"no split after {timeout}s: {ready} {owned}"
        await asyncio.sleep(1)


def _summed(scraped: list[Samples], name: str, *labels: str) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for samples in scraped:
        for key, value in _by(samples, name, *labels).items():
            total[key] += value  # exact: every amount in the story is a multiple of 0.25
    return dict(total)


async def test_two_replicas_in_one_group_add_up_to_the_single_replica_numbers(
    broker: RealBroker,
) -> None:
    """Two in-process metrics instances in one group share the canonical topic's 3 partitions.
    Once both are ready and own 1 and 2 partitions, their components, summed per indicator and
    component, are the hand-computed (single replica) ones; summed values of sum and count
    indicators are the whole values; ratios taken from the summed components are the whole
    ratios; summed freight, project and jobs breakdowns are the whole breakdowns (a project's
    hiring reports are in its milestones' partition, so jobs by sector add up)."""
    kafka = _kafka(broker)
    await ensure_topics(kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])
    await publish_canonical(kafka, _story())
    started = time.monotonic()
    async with _replicas(kafka, unique_name("metrics"), 2) as urls:
        scraped = await _until_split(urls)
    split_s = time.monotonic() - started

    owned = [int(_total(s, "roadmap_metrics_partitions_owned")) for s in scraped]
    components = _summed(scraped, "roadmap_indicator_component", "indicator", "component")
    values = _summed(scraped, "roadmap_indicator_value", "indicator")
    partial = [_by(s, "roadmap_indicator_value", "indicator") for s in scraped]
    ratios = {
        "road_freight_growth_ratio": Decimal(components["road_freight_growth_ratio/current"])
        / Decimal(components["road_freight_growth_ratio/previous"])
        - 1,
        "flour_export_share_ratio": Decimal(components["flour_export_share_ratio/numerator"])
        / Decimal(components["flour_export_share_ratio/denominator"]),
    }
    print(
        f"\ntwo replicas: split {owned} after {split_s:.1f}s; flour share per replica "
        f"{[p.get('flour_export_share_ratio') for p in partial]}, from summed components "
        f"{float(ratios['flour_export_share_ratio']):.6g}"
    )
    assert components == _component_floats(COMPONENTS)
    additive = ("sum", "count")
    assert {i: v for i, v in values.items() if any(c in COMPONENTS[i] for c in additive)} == {
        i: float(v) for i, v in VALUES.items() if any(c in COMPONENTS[i] for c in additive)
    }
    assert _floats(ratios) == {i: float(VALUES[i]) for i in ratios}
    summed = _breakdowns(scraped[0], lambda *args: _summed(scraped, *args))
    assert summed == _expected_breakdowns()


# ---------------------------------------------------------------------------------------------
# 4. Readiness means replayed.

LAST_BATCH = 5000


async def _one_batch(kafka: KafkaSettings, messages: list[Upstream]) -> int:
    """Put ``messages`` (all of one entity) on the canonical topic as a single record batch."""
    records = [canonical_record(kafka, m) for m in messages]
    assert len({r.partition_key for r in records}) == 1
    assert records[0].partition_key is not None
    partition = partition_for_key(records[0].partition_key, kafka.topic_partitions)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        compression_type="gzip",  # 1.8 MB of JSON; gzipped, far under Kafka's 1 MB limit
        max_batch_size=16 * 1024 * 1024,
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    try:
        batch = producer.create_batch()
        for record in records:
            assert batch.append(key=record.key, value=record.value, timestamp=None) is not None
        batch.close()
        await (await producer.send_batch(batch, records[0].topic, partition=partition))
    finally:
        await producer.stop()
    return partition


async def test_readyz_turns_ready_only_once_every_record_present_at_assignment_is_folded(
    broker: RealBroker,
) -> None:
    """/readyz promises the state is replayed: its first 200 comes only after every record that
    was on the canonical topic when the partitions were assigned has been folded. One project's
    milestone, then 5,000 later versions of it sent as one record batch; metrics reads one record
    per batch (METRICS_BATCH_MAX_RECORDS=1) so a premature 'ready' cannot hide."""
    kafka = _kafka(broker)
    await ensure_topics(kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])

    def version(n: int) -> Upstream:
        occurred = _at("2025-03-01T00:00") + timedelta(minutes=n)
        return milestone(
            f"pm-energy-{n}",
            "PRJ-ENERGY",
            occurred=occurred,
            stage="agreed",
            sector="energy",
            joint_venture=False,
            investment_usd=n,
            reached_on=occurred.date(),
        )

    await publish_canonical(kafka, [version(0)])
    partition = await _one_batch(kafka, [version(n) for n in range(1, LAST_BATCH + 1)])
    settings = _metrics_settings(kafka, unique_name("metrics")).model_copy(
        update={"batch_max_records": 1}
    )
    async with running_app(create_metrics(settings, wall_clock=_fixed_clock)) as base_url:
        at_ready = await _scrape(base_url)
        kpi = kafka.topic_name(KPI_SNAPSHOTS)
        first = await read_topic(kafka.bootstrap_servers, kpi, expect=len(INDICATORS), timeout=15)
    folded = _total(at_ready, "roadmap_metrics_events_total")
    value = _by(at_ready, "roadmap_indicator_value", "indicator")["industrial_projects_value_usd"]
    announced = [
        snapshot.value
        for snapshot in (KpiSnapshot.model_validate_json(r.value) for r in first)
        if snapshot.indicator == "industrial_projects_value_usd"
    ]
    print(
        f"\nreadiness: {LAST_BATCH + 1} records in partition {partition}; at the first 200 from "
        f"/readyz {folded:.0f} were folded (project value {value:.0f}, final {LAST_BATCH}); "
        f"first KPI snapshot of it: {announced[:1]}"
    )
    # The first KPI snapshot is published once the state counts as replayed: it must be whole too.
    assert (folded, value, announced[:1]) == (LAST_BATCH + 1, LAST_BATCH, [Decimal(LAST_BATCH)])
