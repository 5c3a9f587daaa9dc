"""Generated upstream events for benchmarks: small, valid, distinct, the three types mixed."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.events import EventType

_COMMODITIES = ("wheat_flour", "wheat", "tractors", "combine_harvesters", "dairy", "fertiliser")
_MODES = ("road", "rail", "road", "multimodal")
_STAGES = ("agreed", "financed", "construction", "operational")
_START = date(2025, 1, 1)


def _shipment(i: int, rng: random.Random) -> dict[str, object]:
    day = _START + timedelta(days=rng.randrange(0, 1800))
    origin, destination = ("KZ", "BY") if rng.random() < 0.6 else ("BY", "KZ")
    data: dict[str, object] = {
        "shipment_id": f"S{i:08d}",
        "origin": origin,
        "destination": destination,
        "mode": rng.choice(_MODES),
        "commodity": rng.choice(_COMMODITIES),
        "tonnes": f"{rng.uniform(1, 40):.3f}",
        "shipped_on": day.isoformat(),
    }
    if rng.random() < 0.8:
        data["value_usd"] = f"{rng.uniform(500, 90_000):.2f}"
    return _envelope(i, EventType.TRADE_SHIPMENT, "kz-customs", day, data)


def _milestone(i: int, rng: random.Random) -> dict[str, object]:
    day = _START + timedelta(days=rng.randrange(0, 1800))
    data: dict[str, object] = {
        "project_id": f"P{i % 5000:05d}",
        "name": f"Project {i % 5000}",
        "sector": rng.choice(("agri_machinery", "food", "chemicals")),
        "joint_venture": rng.random() < 0.5,
        "investment_usd": rng.randrange(1, 60) * 500_000,
        "stage": rng.choice(_STAGES),
        "planned_jobs": rng.randrange(10, 300),
        "reached_on": day.isoformat(),
    }
    return _envelope(i, EventType.PROJECT_MILESTONE, "project-office", day, data)


def _hiring(i: int, rng: random.Random) -> dict[str, object]:
    year, month = 2025 + rng.randrange(0, 5), rng.randrange(1, 13)
    day = date(year, month, 28)
    data: dict[str, object] = {
        "project_id": f"P{rng.randrange(0, 5000):05d}",
        "period": f"{year}-{month:02d}",
        "jobs_created": rng.randrange(-3, 25),
        "reported_on": day.isoformat(),
    }
    return _envelope(i, EventType.HIRING_REPORT, "employment-agency", day, data)


def _envelope(
    i: int, event_type: EventType, source: str, day: date, data: dict[str, object]
) -> dict[str, object]:
    return {
        "event_id": f"bench-{i:09d}",
        "type": event_type.value,
        "schema_version": 1,
        "occurred_at": f"{day.isoformat()}T12:00:00Z",
        "source": source,
        "data": data,
    }


_MAKERS = {
    EventType.TRADE_SHIPMENT: _shipment,
    EventType.PROJECT_MILESTONE: _milestone,
    EventType.HIRING_REPORT: _hiring,
}


def valid_events(
    count: int, *, seed: int = 7, only: EventType | None = None
) -> Iterator[tuple[EventType, bytes]]:
    """``count`` distinct valid events: 60% shipments, 20% milestones, 20% hiring reports.

    Amounts are decimal strings, as on the canonical topic, so the same bytes also serve as
    canonical events. ``only`` restricts the stream to one type.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
    for i in range(count):
        roll = i % 10
        event_type = only or (
            EventType.TRADE_SHIPMENT
            if roll < 6
            else EventType.PROJECT_MILESTONE
            if roll < 8
            else EventType.HIRING_REPORT
        )
        event = _MAKERS[event_type](i, rng)
        yield event_type, json.dumps(event, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class PipelineStream:
    """Upstream messages for the whole-pipeline benchmark, and how many of each kind."""

    messages: list[tuple[EventType, bytes]]
    kinds: dict[str, int]


def _corrected(event: dict[str, object], rng: random.Random, i: int) -> dict[str, object]:
    """A later version of ``event``'s entity: a new event id, an hour later, new figures."""
    data = dict(event["data"])  # type: ignore[call-overload]
    if "tonnes" in data:
        data["tonnes"] = f"{rng.uniform(1, 40):.3f}"
    elif "jobs_created" in data:
        data["jobs_created"] = rng.randrange(0, 25)
    else:
        data["stage"] = rng.choice(_STAGES)
    occurred = str(event["occurred_at"]).replace("T12:00:00Z", "T13:00:00Z")
    return {**event, "event_id": f"bench-fix-{i:09d}", "occurred_at": occurred, "data": data}


def _invalid(i: int, rng: random.Random) -> tuple[EventType, bytes]:
    """A message ingest must reject: every other one breaks the schema, the rest are not JSON."""
    event_type, value = next(valid_events(1, seed=rng.randrange(1 << 30)))
    if i % 2:
        event = json.loads(value)
        event["event_id"] = f"bench-bad-{i:09d}"
        event["schema_version"] = 99
        return event_type, json.dumps(event).encode()
    return event_type, b'{"event_id": "bench-bad-' + str(i).encode() + b'", truncated'


def pipeline_stream(
    count: int,
    *,
    seed: int = 2029,
    invalid: float = 0.02,
    duplicates: float = 0.03,
    corrections: float = 0.05,
) -> PipelineStream:
    """``count`` upstream messages of the three types: mostly new entities, with corrections
    (later versions of earlier entities), exact re-sends and ``invalid`` rejected messages."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
    fresh = valid_events(count, seed=seed)
    messages: list[tuple[EventType, bytes]] = []
    accepted: list[tuple[EventType, bytes]] = []  # what a duplicate or a correction repeats
    kinds = dict.fromkeys(("new", "correction", "duplicate", "invalid"), 0)
    for i in range(count):
        roll = rng.random()
        if roll < invalid:
            kind, message = "invalid", _invalid(i, rng)
        elif roll < invalid + duplicates and accepted:
            kind, message = "duplicate", rng.choice(accepted)
        elif roll < invalid + duplicates + corrections and accepted:
            event_type, value = rng.choice(accepted)
            fixed = _corrected(json.loads(value), rng, i)
            kind = "correction"
            message = (event_type, json.dumps(fixed, separators=(",", ":")).encode())
        else:
            kind, message = "new", next(fresh)
        if kind in ("new", "correction"):
            accepted.append(message)
        kinds[kind] += 1
        messages.append(message)
    return PipelineStream(messages, kinds)
