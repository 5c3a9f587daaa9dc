"""An independent reference fold, and the seeded upstream stream the fault suite checks it on.

``reference_fold(messages)`` works out, from the upstream messages alone, what the metrics
service must export on ``/metrics`` once every message went through ingest and was folded: the
scorecard (``roadmap_indicator_value`` and ``_component`` per indicator, freshness, the
evaluation time on the event clock) and the domain breakdowns (freight by direction, mode and
commodity; projects and investment by stage; jobs by sector; entities held). It is written from
the README and DESIGN, not from the service: plain dicts of decoded events, exact ``Decimal``
sums, "the latest version per natural key wins" (later ``occurred_at``, ties by ``event_id``).
It uses ``contracts/`` only to decode bytes (so it knows what ingest accepts) and to read the
roadmap file; it never imports ``services/metrics``.

``fault_stream(seed, size)`` builds ``size`` upstream messages: shipments, project milestones and
hiring reports, each entity in one to four versions (corrections that move amounts and labels,
ties broken by ``event_id``, an older version re-sent late), exact and re-serialised
re-deliveries, and about 2% invalid messages. Every business date is in 2024-06..2024-12,
2025-01..2025-05 or 2026-01..2026-05 and every ``occurred_at`` in June 2026, so on the event
clock (June 2026, whatever a replica has read so far) each window (since start, year to date
and the same days of 2025) holds the same events: partial results of replicas add up exactly,
and amounts are multiples of 0.25, so even their float sums are exact.
"""

from __future__ import annotations

import calendar
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import (
    EventType,
    HiringReportEvent,
    ProjectMilestoneEvent,
    ProjectStage,
    TradeShipmentEvent,
)
from contracts.examples import InvalidExample, invalid_examples
from contracts.roadmap.model import (
    CountOf,
    GrowthOf,
    Indicator,
    Measure,
    RoadmapFile,
    ShareOf,
    SumOf,
    Where,
    Window,
)
from tests.support.roadmap_events import hiring, milestone, shipment
from tests.support.streams import Fate, Upstream

AnyEvent = TradeShipmentEvent | ProjectMilestoneEvent | HiringReportEvent

# The README's defaults (METRICS_COMMODITIES, METRICS_SECTORS, METRICS_CORRIDOR).
COMMODITIES = frozenset(
    {"wheat_flour", "wheat", "barley", "tractors", "combine_harvesters", "fertiliser", "dairy"}
    | {"meat"}
)
SECTORS = frozenset(
    {"agricultural_machinery", "food_processing", "automotive", "chemicals", "pharmaceuticals"}
    | {"energy", "construction_materials", "textiles"}
)
CORRIDOR = ("KZ", "BY")

Freight = tuple[str, str, str]
"""(direction, mode, commodity) labels."""


@dataclass
class Expected:
    """What /metrics must show: every number exact, ``None`` where a value is undefined."""

    evaluated_at: datetime
    values: dict[str, Decimal | None]
    components: dict[str, dict[str, Decimal]]
    last_event: dict[str, datetime | None]
    freight_shipments: dict[Freight, int] = field(default_factory=dict)
    freight_tonnes: dict[Freight, Decimal] = field(default_factory=dict)
    freight_value_usd: dict[Freight, Decimal] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    projects_investment_usd: dict[str, Decimal] = field(default_factory=dict)
    jobs: dict[str, Decimal] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    """Distinct valid events (by event_id) among the messages."""
    projections: dict[str, tuple[Decimal, date | None]] = field(default_factory=dict)
    """Per projected indicator: the value at the deadline, and the day the target is reached."""

    def series(self) -> dict[str, float]:
        """Every expected series as ``name{label=value,...}`` -> float, zero series left out
        (a label combination every entity has left keeps a 0 series on /metrics)."""
        out: dict[str, float] = {
            "roadmap_evaluation_timestamp_seconds{}": self.evaluated_at.timestamp()
        }

        def put(name: str, labels: dict[str, str], value: Decimal | int | float) -> None:
            if value:
                text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                out[f"{name}{{{text}}}"] = float(value)

        for indicator, value in self.values.items():
            if value is not None:
                put("roadmap_indicator_value", {"indicator": indicator}, value)
            for component, amount in self.components[indicator].items():
                labels = {"indicator": indicator, "component": component}
                put("roadmap_indicator_component", labels, amount)
            moment = self.last_event[indicator]
            if moment is not None:
                name = "roadmap_indicator_last_event_timestamp_seconds"
                put(name, {"indicator": indicator}, moment.timestamp())
            if indicator in self.projections:
                projected, reached = self.projections[indicator]
                put("roadmap_indicator_projected", {"indicator": indicator}, projected)
                if reached is not None:
                    midnight = datetime.combine(reached, time.min, tzinfo=UTC).timestamp()
                    name = "roadmap_indicator_projected_completion_timestamp_seconds"
                    put(name, {"indicator": indicator}, midnight)
        for freight_key, count in self.freight_shipments.items():
            labels = dict(zip(("direction", "mode", "commodity"), freight_key, strict=True))
            put("roadmap_freight_shipments", labels, count)
            put("roadmap_freight_tonnes", labels, self.freight_tonnes[freight_key])
            put("roadmap_freight_value_usd", labels, self.freight_value_usd[freight_key])
        for stage, count in self.projects.items():
            put("roadmap_projects", {"stage": stage}, count)
            put(
                "roadmap_projects_investment_usd",
                {"stage": stage},
                self.projects_investment_usd[stage],
            )
        for sector, jobs in self.jobs.items():
            put("roadmap_jobs", {"sector": sector}, jobs)
        for event_type, count in self.entities.items():
            put("roadmap_metrics_entities", {"type": event_type}, count)
        return out


# ---------------------------------------------------------------------------------------------
# The fold.


def _version(event: AnyEvent) -> tuple[datetime, str]:
    return event.occurred_at, event.event_id


def _natural_key(event: AnyEvent) -> tuple[str, ...]:
    if isinstance(event, TradeShipmentEvent):
        return (event.type.value, event.data.shipment_id)
    if isinstance(event, ProjectMilestoneEvent):
        return (event.type.value, event.data.project_id)
    return (event.type.value, event.data.project_id, event.data.period)


def _business_day(event: AnyEvent) -> date:
    if isinstance(event, TradeShipmentEvent):
        return event.data.shipped_on
    if isinstance(event, ProjectMilestoneEvent):
        return event.data.reached_on
    year, month = event.data.period.split("-")
    return date(int(year), int(month), 1)


def _matches(where: Where, event: AnyEvent) -> bool:
    data = event.data
    for name, allowed in where.fields.items():
        if getattr(data, name) not in allowed:
            return False
    if where.route_between is not None:
        assert isinstance(event, TradeShipmentEvent)
        a, b = where.route_between
        if (event.data.origin, event.data.destination) not in {(a, b), (b, a)}:
            return False
    if where.stage_at_least is not None:
        assert isinstance(event, ProjectMilestoneEvent)
        if not event.data.stage.is_at_least(where.stage_at_least):
            return False
    return True


def _amount(measure: Measure, event: AnyEvent) -> Decimal | None:
    """What ``event`` adds to ``measure`` (``None``: it does not count there)."""
    if event.type is not measure.event_type or not _matches(measure.where, event):
        return None
    raw = getattr(event.data, measure.field)
    return None if raw is None else Decimal(raw)


def _counts(count: CountOf, event: AnyEvent) -> bool:
    return event.type is count.event_type and _matches(count.where, event)


def _same_day(on: date, year: int) -> date:
    return date(year, on.month, min(on.day, calendar.monthrange(year, on.month)[1]))


def _in_window(window: Window | None, indicator: Indicator, day: date, on: date) -> bool:
    """``window`` None: the pace window, the last ``pace_window`` days up to ``on`` and none
    before the start."""
    if window is None:
        return max(on - indicator.pace_window + timedelta(days=1), indicator.start) <= day <= on
    if window is Window.ALL:
        return True
    if window is Window.SINCE_START:
        return indicator.start <= day <= on
    return date(on.year, 1, 1) <= day <= on


def _components(indicator: Indicator, latest: Sequence[AnyEvent], on: date) -> dict[str, Decimal]:
    compute = indicator.compute

    def total(measure: Measure, window: Window | None) -> Decimal:
        found = (
            (_amount(measure, e), _business_day(e))
            for e in latest
            if _in_window(window, indicator, _business_day(e), on)
        )
        return sum((amount for amount, _ in found if amount is not None), Decimal(0))

    def count(window: Window | None) -> Decimal:
        assert isinstance(compute, CountOf)
        return Decimal(
            sum(
                1
                for e in latest
                if _counts(compute, e) and _in_window(window, indicator, _business_day(e), on)
            )
        )

    # Projected: sums and counts of all time or since the start, of shipments or hiring reports.
    cumulative = (
        isinstance(compute, SumOf | CountOf)
        and compute.window in (Window.ALL, Window.SINCE_START)
        and compute.event_type in (EventType.TRADE_SHIPMENT, EventType.HIRING_REPORT)
    )
    if isinstance(compute, SumOf):
        parts = {"sum": total(compute, compute.window)}
        return {**parts, "recent": total(compute, None)} if cumulative else parts
    if isinstance(compute, CountOf):
        parts = {"count": count(compute.window)}
        return {**parts, "recent": count(None)} if cumulative else parts
    if isinstance(compute, ShareOf):
        return {
            "numerator": total(compute.numerator, compute.window),
            "denominator": total(compute.denominator, compute.window),
        }
    assert isinstance(compute, GrowthOf)
    previous_year = on.year - 1
    last_year = (date(previous_year, 1, 1), _same_day(on, previous_year))
    return {
        "current": total(compute.measure, Window.YEAR_TO_DATE),
        "previous": sum(
            (
                amount
                for e in latest
                if last_year[0] <= _business_day(e) <= last_year[1]
                and (amount := _amount(compute.measure, e)) is not None
            ),
            Decimal(0),
        ),
    }


def _projection(
    indicator: Indicator, value: Decimal, recent: Decimal, on: date
) -> tuple[Decimal, date | None]:
    """The issue's definition: the pace is the gain over the pace window per day; at that pace,
    the value at the end of the deadline day, and the first day it reaches the target."""
    first = max(on - indicator.pace_window + timedelta(days=1), indicator.start)
    pace = recent / ((on - first).days + 1)
    projected = value + pace * max(0, (indicator.deadline - on).days)
    if value >= indicator.target:
        return projected, on
    if pace <= 0:
        return projected, None
    return projected, on + timedelta(days=math.ceil((indicator.target - value) / pace))


def _value(compute: Any, parts: dict[str, Decimal]) -> Decimal | None:
    if isinstance(compute, SumOf | CountOf):
        return next(iter(parts.values()))
    top, bottom = parts.values()
    if bottom == 0:
        return None
    return top / bottom if isinstance(compute, ShareOf) else top / bottom - 1


def _touches(indicator: Indicator, event: AnyEvent) -> bool:
    """Whether ``event`` counts anywhere in ``indicator`` (any window)."""
    compute = indicator.compute
    if isinstance(compute, CountOf):
        return _counts(compute, event)
    measures: list[Measure] = (
        [compute]
        if isinstance(compute, SumOf)
        else [compute.numerator, compute.denominator]
        if isinstance(compute, ShareOf)
        else [compute.measure]
    )
    return any(_amount(m, event) is not None for m in measures)


def decoded(messages: Iterable[Upstream]) -> list[AnyEvent]:
    """The events ingest accepts from ``messages``, in order (re-deliveries included)."""
    events = []
    for message in messages:
        if message.value is None:
            continue
        result = decode_event(message.value, expected_type=message.topic_type)
        if isinstance(result, Accepted):
            events.append(result.event)
    return events


def reference_fold(messages: Iterable[Upstream], roadmap: RoadmapFile) -> Expected:
    """What the metrics service exports for ``messages`` (published in this order) on the event
    clock: the newest ``occurred_at`` of any accepted event is the evaluation time."""
    events = decoded(messages)
    latest: dict[tuple[str, ...], AnyEvent] = {}
    last_event: dict[str, datetime | None] = {i.id: None for i in roadmap.indicators}
    for event in events:
        key = _natural_key(event)
        held = latest.get(key)
        if held is not None and _version(event) <= _version(held):
            continue  # a re-delivery or an older version: changes nothing
        latest[key] = event
        # Freshness: an applied version "changed" an indicator it counts in, or whose count
        # the version it replaced leaves.
        for indicator in roadmap.indicators:
            if _touches(indicator, event) or (held is not None and _touches(indicator, held)):
                seen = last_event[indicator.id]
                last_event[indicator.id] = max(seen or event.occurred_at, event.occurred_at)
    if not events:
        raise ValueError("no valid event: the event clock has no time")
    at = max(e.occurred_at for e in latest.values())
    entities = list(latest.values())
    components = {i.id: _components(i, entities, at.date()) for i in roadmap.indicators}
    values = {i.id: _value(i.compute, components[i.id]) for i in roadmap.indicators}
    expected = Expected(
        evaluated_at=at,
        values=values,
        components=components,
        last_event=last_event,
        accepted=len({e.event_id for e in events}),
        projections={
            i.id: _projection(i, value, components[i.id]["recent"], at.date())
            for i in roadmap.indicators
            if "recent" in components[i.id]
            and (value := values[i.id]) is not None
            and at.date() >= i.start
        },
    )
    _breakdowns(expected, entities)
    return expected


def _direction(origin: str, destination: str) -> str:
    a, b = CORRIDOR
    if (origin, destination) == (a, b):
        return f"{a}_to_{b}"
    if (origin, destination) == (b, a):
        return f"{b}_to_{a}"
    return "other"


def _breakdowns(expected: Expected, entities: list[AnyEvent]) -> None:
    sectors: dict[str, str] = {}
    for event in entities:
        if isinstance(event, ProjectMilestoneEvent):
            sector = event.data.sector
            sectors[event.data.project_id] = sector if sector in SECTORS else "other"
    shipments: dict[Freight, int] = defaultdict(int)
    tonnes: dict[Freight, Decimal] = defaultdict(Decimal)
    worth: dict[Freight, Decimal] = defaultdict(Decimal)
    projects: dict[str, int] = defaultdict(int)
    investment: dict[str, Decimal] = defaultdict(Decimal)
    jobs: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[str, int] = {t.value: 0 for t in EventType}
    for event in entities:
        held[event.type.value] += 1
        if isinstance(event, TradeShipmentEvent):
            s = event.data
            commodity = s.commodity if s.commodity in COMMODITIES else "other"
            freight = (_direction(s.origin, s.destination), s.mode.value, commodity)
            shipments[freight] += 1
            tonnes[freight] += s.tonnes
            worth[freight] += s.value_usd or Decimal(0)
        elif isinstance(event, ProjectMilestoneEvent):
            projects[event.data.stage.value] += 1
            investment[event.data.stage.value] += event.data.investment_usd
        else:
            jobs[sectors.get(event.data.project_id, "unknown")] += event.data.jobs_created
    expected.freight_shipments = dict(shipments)
    expected.freight_tonnes = dict(tonnes)
    expected.freight_value_usd = dict(worth)
    expected.projects = dict(projects)
    expected.projects_investment_usd = dict(investment)
    expected.jobs = dict(jobs)
    expected.entities = held


# ---------------------------------------------------------------------------------------------
# The fault suite's stream.

JUNE_2026 = datetime(2026, 6, 1, tzinfo=UTC)
MONTHS = [f"2024-{m:02d}" for m in range(6, 13)] + [
    f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 6)
]
"""Business months: before the roadmap start, and January-May of 2025 and 2026."""
ROUTES = [("KZ", "BY"), ("BY", "KZ"), ("KZ", "RU"), ("UZ", "KZ"), ("by", "kz")]
MODES = ["road", "road", "road", "rail", "multimodal", "air"]
GOODS = ["wheat_flour", "wheat_flour", "wheat", "tractors", "dairy", "cotton", "copper"]
SECTOR_CODES = [*sorted(SECTORS), "aerospace", "mining"]
STAGES = [s.value for s in ProjectStage]


@dataclass
class FaultStream:
    """The messages in publish order, and what went into them."""

    seed: int
    messages: list[Upstream]

    def count(self, fate: Fate) -> int:
        return sum(1 for m in self.messages if m.fate is fate)

    def summary(self) -> str:
        kinds: dict[str, int] = defaultdict(int)
        for message in self.messages:
            kinds[message.label.split(":")[0]] += 1
        return ", ".join(f"{n} {label}" for label, n in sorted(kinds.items()))


def _quarter(rng: random.Random, high: int) -> Any:
    """A positive multiple of 0.25 up to ``high``, as a JSON number or a decimal string."""
    amount = Decimal(rng.randint(1, high * 4)) / 4
    return float(amount) if rng.random() < 0.5 else str(amount)


def _day_in(rng: random.Random, month: str) -> date:
    year, number = (int(part) for part in month.split("-"))
    return date(year, number, rng.randint(1, calendar.monthrange(year, number)[1]))


def _occurred(rng: random.Random, versions: int) -> list[datetime]:
    """Non-decreasing times in June 2026 (equal ones are versions told apart by event_id)."""
    moments = sorted(
        JUNE_2026 + timedelta(seconds=rng.randrange(27 * 86_400)) for _ in range(versions)
    )
    if versions > 1 and rng.random() < 0.1:
        moments[1] = moments[0]  # a tie: the later event_id wins
    return moments


def _shipment_lane(rng: random.Random, run: str, n: int) -> list[Upstream]:
    versions = rng.randint(1, 3)
    route, mode, goods = rng.choice(ROUTES), rng.choice(MODES), rng.choice(GOODS)
    lane = []
    for v, moment in enumerate(_occurred(rng, versions), start=1):
        if v > 1 and rng.random() < 0.3:  # a correction that moves the shipment's labels
            route, mode, goods = rng.choice(ROUTES), rng.choice(MODES), rng.choice(GOODS)
        value = None if rng.random() < 0.1 else _quarter(rng, 200_000)
        lane.append(
            shipment(
                f"{run}-sh{n}-v{v}",
                f"{run}-SH{n}",
                occurred=moment,
                route=route,
                mode=mode,
                commodity=goods,
                tonnes=_quarter(rng, 500),
                value_usd=value,
                shipped_on=_day_in(rng, rng.choice(MONTHS)),
            )
        )
    return lane


def _project_lane(rng: random.Random, run: str, n: int) -> list[Upstream]:
    versions = rng.randint(1, 4)
    sector, jv = rng.choice(SECTOR_CODES), rng.random() < 0.6
    lane = []
    for v, moment in enumerate(_occurred(rng, versions), start=1):
        if rng.random() < 0.15:
            sector = rng.choice(SECTOR_CODES)
        lane.append(
            milestone(
                f"{run}-pm{n}-v{v}",
                f"{run}-P{n}",
                occurred=moment,
                stage=rng.choice(STAGES),
                sector=sector,
                joint_venture=jv,
                investment_usd=_quarter(rng, 40_000_000),
                reached_on=_day_in(rng, rng.choice(MONTHS)),
                planned_jobs=rng.randint(0, 300),
            )
        )
    return lane


def _hiring_lane(rng: random.Random, run: str, n: int, projects: int) -> list[Upstream]:
    # A few projects never get a milestone: their jobs count under the sector "unknown".
    project = rng.randrange(projects + projects // 20)
    period = MONTHS[n % len(MONTHS)]
    return [
        hiring(
            f"{run}-hr{n}-v{v}",
            f"{run}-P{project}",
            period,
            rng.randint(-20, 80),
            occurred=moment,
        )
        for v, moment in enumerate(_occurred(rng, rng.randint(1, 3)), start=1)
    ]


def _reserialised(message: Upstream) -> bytes:
    """The same event in other bytes: keys reversed, other whitespace, amounts with zeros."""
    assert message.value is not None
    body = json.loads(message.value)
    for name in ("tonnes", "value_usd", "investment_usd"):
        amount = body["data"].get(name)
        if amount is not None:
            text = str(Decimal(str(amount)))
            body["data"][name] = text + ("00" if "." in text else ".000")
    twin = dict(reversed(list(body.items())))
    return json.dumps(twin, indent=1, separators=(",", " : ")).encode()


def _with_redeliveries(rng: random.Random, lane: list[Upstream]) -> list[Upstream]:
    """Sometimes an exact or re-serialised re-delivery, or an older version re-sent late."""
    lane = [replace(m, label="valid" if i == 0 else "correction") for i, m in enumerate(lane)]
    roll = rng.random()
    if roll < 0.05:
        original = rng.choice(lane)
        assert original.value is not None
        return [*lane, replace(original, fate=Fate.DUPLICATE, label="duplicate: same bytes")]
    if roll < 0.09:
        original = rng.choice(lane)
        twin = replace(
            original,
            value=_reserialised(original),
            fate=Fate.DUPLICATE,
            label="duplicate: re-serialised",
        )
        return [*lane, twin]
    if roll < 0.12 and len(lane) > 1:
        # The newest version overtakes the one before it: that one arrives late, stale.
        return [*lane[:-2], replace(lane[-1], label="correction"), replace(lane[-2], label="late")]
    return lane


def _invalid(rng: random.Random, run: str, n: int, catalog: list[InvalidExample]) -> Upstream:
    """A message ingest must send to the DLQ: a catalog example, or a broken event."""
    kinds = list(EventType)
    roll = rng.random()
    if roll < 0.5:
        example = catalog[n % len(catalog)]
        topic = example.sent_as or rng.choice(kinds)
        return Upstream(topic, None, example.raw, Fate.DEAD_LETTER, f"invalid: {example.name}")
    good = shipment(
        f"{run}-bad{n}",
        f"{run}-BAD{n}",
        occurred=JUNE_2026,
        route=("KZ", "BY"),
        mode="road",
        commodity="wheat",
        tonnes=1,
        shipped_on=date(2025, 3, 1),
    )
    assert good.value is not None
    body = json.loads(good.value)
    if roll < 0.65:
        body["data"]["tonnes"] = -5
        raw = json.dumps(body).encode()
    elif roll < 0.8:
        body["data"]["colour"] = "red"
        raw = json.dumps(body).encode()
    elif roll < 0.9:
        raw = good.value[: len(good.value) // 2]
    else:
        return Upstream(
            EventType.HIRING_REPORT, None, good.value, Fate.DEAD_LETTER, "invalid: wrong topic"
        )
    return Upstream(EventType.TRADE_SHIPMENT, None, raw, Fate.DEAD_LETTER, "invalid: broken")


def fault_stream(seed: int, size: int = 50_000, *, run: str = "f") -> FaultStream:
    """``size`` upstream messages, seeded; ids start with ``run``. Each entity's messages keep
    their order and upstream key (its natural key); entities are interleaved at random."""
    rng = random.Random(seed)
    invalid = size // 50
    projects = max(10, size // 100)
    lanes: list[list[Upstream]] = [
        _with_redeliveries(rng, _project_lane(rng, run, n)) for n in range(projects)
    ]
    count = sum(len(lane) for lane in lanes)
    n = 0
    while count < size - invalid:
        lane = (
            _shipment_lane(rng, run, n)
            if rng.random() < 0.7
            else _hiring_lane(rng, run, n, projects)
        )
        lane = _with_redeliveries(rng, lane)[: size - invalid - count]
        lanes.append(lane)
        count += len(lane)
        n += 1
    catalog = invalid_examples()
    lanes.extend([_invalid(rng, run, i, catalog)] for i in range(invalid))
    messages = _interleave(lanes, rng)
    _check_fates(messages)
    return FaultStream(seed, messages)


def _interleave(lanes: list[list[Upstream]], rng: random.Random) -> list[Upstream]:
    pending = [list(reversed(lane)) for lane in lanes if lane]
    merged: list[Upstream] = []
    while pending:
        index = rng.randrange(len(pending))
        merged.append(pending[index].pop())
        if not pending[index]:
            pending[index] = pending[-1]
            pending.pop()
    return merged


def _check_fates(messages: Sequence[Upstream]) -> None:
    """The fates written on the messages are the decoder's and the dedup's own verdicts."""
    accepted: dict[str, bytes] = {}
    for message in messages:
        assert message.value is not None
        result = decode_event(message.value, expected_type=message.topic_type)
        if not isinstance(result, Accepted):
            assert message.fate is Fate.DEAD_LETTER, message.label
            continue
        canonical = encode_event(result.event)
        event_id = result.event.event_id
        fate = Fate.DUPLICATE if event_id in accepted else Fate.CANONICAL
        assert message.fate is fate, (message.label, message.fate, fate)
        assert accepted.setdefault(event_id, canonical) == canonical, f"{event_id} reused"
        assert message.canonical_value == canonical, message.label


# ---------------------------------------------------------------------------------------------
# Reading /metrics the same way.

SERIES = (
    "roadmap_evaluation_timestamp_seconds",
    "roadmap_indicator_value",
    "roadmap_indicator_component",
    "roadmap_indicator_last_event_timestamp_seconds",
    "roadmap_indicator_projected",
    "roadmap_indicator_projected_completion_timestamp_seconds",
    "roadmap_freight_shipments",
    "roadmap_freight_tonnes",
    "roadmap_freight_value_usd",
    "roadmap_projects",
    "roadmap_projects_investment_usd",
    "roadmap_jobs",
    "roadmap_metrics_entities",
)
"""The series ``Expected.series`` covers."""


def sample_total(text: str, sample: str) -> float:
    """The sum of every sample called ``sample`` (e.g. ``x_total``) over its label sets."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample
    )


def observed_series(texts: Iterable[str], names: Sequence[str] = SERIES) -> dict[str, float]:
    """The non-zero ``names`` series of one or more /metrics answers, summed over them, keyed
    like ``Expected.series``."""
    found: dict[str, float] = defaultdict(float)
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in names:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    found[f"{sample.name}{{{labels}}}"] += sample.value
    return {key: value for key, value in found.items() if value}


def differences(expected: dict[str, float], observed: dict[str, float]) -> list[str]:
    """Each series whose value differs, or that only one side has, as a readable line."""
    return [
        f"{key}: expected {expected.get(key)}, /metrics {observed.get(key)}"
        for key in sorted(set(expected) | set(observed))
        if expected.get(key) != observed.get(key)
    ]
