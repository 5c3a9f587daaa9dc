"""``fold(state, event)``: one partition's state, with the latest version per natural key.

A later version of a key (later ``occurred_at``, ties by ``event_id``) replaces the earlier one:
the old record's contributions are taken out of every sum and the new one's put in, so every
sum is always over the latest version of each entity, whatever the order of arrival and however
often an event is re-delivered. An older version arriving late is ignored (stale). Pure: no
broker, clock or environment; the state is mutated in place and returned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.events import EventType
from contracts.keys import AnyEvent
from services.metrics.entities import EntityRecord, Project, record_of
from services.metrics.plan import RoadmapPlan, contributions
from services.metrics.stores import PackedShipments

OTHER = "other"
UNKNOWN = "unknown"


class Applied(StrEnum):  # a str: hashed in C when the consumer tallies outcomes
    NEW = "new"
    CORRECTION = "correction"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class BreakdownLabels:
    """Bounded label values for the domain breakdowns; anything else becomes ``other``."""

    corridor: tuple[str, str] = ("KZ", "BY")
    commodities: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    _directions: dict[tuple[str, str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        a, b = self.corridor  # the two label values, made once rather than per shipment
        object.__setattr__(self, "_directions", {(a, b): f"{a}_to_{b}", (b, a): f"{b}_to_{a}"})

    def direction(self, origin: str, destination: str) -> str:
        return self._directions.get((origin, destination), OTHER)

    def commodity(self, code: str) -> str:
        return code if code in self.commodities else OTHER

    def sector(self, code: str) -> str:
        return code if code in self.sectors else OTHER


@dataclass
class PartitionState:
    """Everything derived from one partition of the canonical topic."""

    plan: RoadmapPlan
    labels: BreakdownLabels = field(default_factory=BreakdownLabels)
    entities: dict[EventType, MutableMapping[str, Any]] = field(
        default_factory=lambda: {
            EventType.TRADE_SHIPMENT: PackedShipments(),
            EventType.PROJECT_MILESTONE: {},
            EventType.HIRING_REPORT: {},
        }
    )
    buckets: list[defaultdict[int, int]] = field(default_factory=list)
    """Per slot: business day ordinal -> sum in millionths."""
    slot_last_event_us: list[int] = field(default_factory=list)
    """Per slot: the newest ``occurred_at`` of an event that changed it (0: none yet)."""
    freight: defaultdict[tuple[str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    """(direction, mode, commodity) -> [shipments, tonnes, value_usd] in millionths."""
    projects_by_stage: defaultdict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    """stage -> [projects, investment_usd in millionths]."""
    jobs_by_project: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    newest_event_us: int = 0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [defaultdict(int) for _ in self.plan.slots]
            self.slot_last_event_us = [0] * len(self.plan.slots)


def apply(state: PartitionState, event: AnyEvent) -> Applied:
    """Fold one canonical event into ``state`` and say what it was."""
    event_type, key, record = record_of(event)
    return apply_record(state, event_type, key, record)


def apply_record(
    state: PartitionState, event_type: EventType, key: str, record: EntityRecord
) -> Applied:
    held = state.entities[event_type]
    old = held.get(key)
    outcome = Applied.NEW
    if old is not None:
        if (record[0], record[1]) == (old[0], old[1]):
            return Applied.DUPLICATE
        if (record[0], record[1]) < (old[0], old[1]):
            return Applied.STALE
        outcome = Applied.CORRECTION
    held[key] = record  # first: if the record cannot be held, no sum has changed
    if old is not None:
        _account(state, event_type, old, -1, record[0])
    _account(state, event_type, record, +1, record[0])
    state.newest_event_us = max(state.newest_event_us, record[0])
    return outcome


def fold(state: PartitionState, event: AnyEvent) -> PartitionState:
    """The reducer form of ``apply``: ``functools.reduce(fold, events, state)``."""
    apply(state, event)
    return state


def _account(
    state: PartitionState, event_type: EventType, record: EntityRecord, sign: int, seen_us: int
) -> None:
    buckets, last_seen, day = state.buckets, state.slot_last_event_us, record.day
    for index, amount in contributions(state.plan, event_type, record):
        buckets[index][day] += sign * amount
        if seen_us > last_seen[index]:  # noqa: PLR1730 - max() costs a call per slot
            last_seen[index] = seen_us
    _BREAKDOWNS[event_type](state, record, sign)


def _shipment_breakdown(state: PartitionState, record: Any, sign: int) -> None:
    labels = state.labels
    row = state.freight[
        (
            labels.direction(record.origin, record.destination),
            record.mode,
            labels.commodity(record.commodity),
        )
    ]
    row[0] += sign
    row[1] += sign * record.tonnes
    row[2] += sign * (record.value_usd or 0)


def _project_breakdown(state: PartitionState, record: Any, sign: int) -> None:
    row = state.projects_by_stage[record.stage]
    row[0] += sign
    row[1] += sign * record.investment_usd


def _hiring_breakdown(state: PartitionState, record: Any, sign: int) -> None:
    state.jobs_by_project[record.project_id] += sign * record.jobs_created


_BREAKDOWNS: dict[EventType, Callable[[PartitionState, Any, int], None]] = {
    EventType.TRADE_SHIPMENT: _shipment_breakdown,
    EventType.PROJECT_MILESTONE: _project_breakdown,
    EventType.HIRING_REPORT: _hiring_breakdown,
}


def jobs_by_sector(state: PartitionState) -> dict[str, int]:
    """Jobs (millionths) per bounded sector label; ``unknown`` before a project's first milestone.

    Hiring reports and milestones of one project share a partition, so the join is local.
    """
    projects = state.entities[EventType.PROJECT_MILESTONE]
    totals: dict[str, int] = defaultdict(int)
    for project_id, jobs in state.jobs_by_project.items():
        project = projects.get(project_id)
        sector = state.labels.sector(project.sector) if isinstance(project, Project) else UNKNOWN
        totals[sector] += jobs
    return dict(totals)
