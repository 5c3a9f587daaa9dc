"""Event shapes published by upstream systems (DESIGN section 3).

Each event is an envelope (``event_id``, ``type``, ``schema_version``, ``occurred_at``,
``source``) around a ``data`` object whose shape depends on ``type``. Unknown fields are
rejected everywhere. The same models describe canonical events on ``roadmap.events.v1``:
a canonical event is the validated, normalised form of an upstream one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from contracts.fields import (
    Amount,
    CalendarDate,
    Count,
    CountryCode,
    Flag,
    Identifier,
    Month,
    PositiveAmount,
    SignedCount,
    SnakeCode,
    SourceName,
    Text,
    Timestamp,
)

SCHEMA_VERSION = 1


class Contract(BaseModel):
    """Base of every contract model: closed, immutable, trimmed strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class EventType(StrEnum):
    TRADE_SHIPMENT = "trade.shipment"
    PROJECT_MILESTONE = "project.milestone"
    HIRING_REPORT = "hiring.report"


class TransportMode(StrEnum):
    ROAD = "road"
    RAIL = "rail"
    AIR = "air"
    MULTIMODAL = "multimodal"


class ProjectStage(StrEnum):
    """A project's stage. Live stages are ordered; ``cancelled`` is outside that order."""

    AGREED = "agreed"
    FINANCED = "financed"
    CONSTRUCTION = "construction"
    OPERATIONAL = "operational"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int | None:
        """Position in the live order (``agreed`` = 0), or ``None`` for ``cancelled``."""
        return None if self is ProjectStage.CANCELLED else _LIVE_STAGES.index(self)

    def is_at_least(self, other: ProjectStage) -> bool:
        """True when this stage is live and at or past ``other`` (a live stage)."""
        mine, theirs = self.rank, other.rank
        return mine is not None and theirs is not None and mine >= theirs


_LIVE_STAGES = (
    ProjectStage.AGREED,
    ProjectStage.FINANCED,
    ProjectStage.CONSTRUCTION,
    ProjectStage.OPERATIONAL,
)


class TradeShipment(Contract):
    """One consignment crossing a border, as reported by customs or freight systems."""

    shipment_id: Identifier
    origin: CountryCode
    destination: CountryCode
    mode: TransportMode
    commodity: SnakeCode
    tonnes: PositiveAmount
    value_usd: Amount | None = None
    shipped_on: CalendarDate


class ProjectMilestone(Contract):
    """A joint industrial project reaching a stage, as reported by the project office."""

    project_id: Identifier
    name: Text
    sector: SnakeCode
    joint_venture: Flag
    investment_usd: Amount
    stage: ProjectStage
    planned_jobs: Count
    reached_on: CalendarDate


class HiringReport(Contract):
    """Net new jobs at one project in one month, as reported by employment agencies."""

    project_id: Identifier
    period: Month
    jobs_created: SignedCount
    reported_on: CalendarDate


def _integer_only(value: Any) -> Any:
    # Literal[1] alone would let true and 1.0 through: versions are integers.
    if type(value) is not int:
        raise ValueError("schema_version must be an integer")
    return value


class _Envelope(Contract):
    event_id: Identifier
    schema_version: Annotated[Literal[1], BeforeValidator(_integer_only)]
    occurred_at: Timestamp
    source: SourceName


class TradeShipmentEvent(_Envelope):
    type: Literal[EventType.TRADE_SHIPMENT]
    data: TradeShipment


class ProjectMilestoneEvent(_Envelope):
    type: Literal[EventType.PROJECT_MILESTONE]
    data: ProjectMilestone


class HiringReportEvent(_Envelope):
    type: Literal[EventType.HIRING_REPORT]
    data: HiringReport


Event = Annotated[
    TradeShipmentEvent | ProjectMilestoneEvent | HiringReportEvent,
    Field(discriminator="type"),
]
"""Any upstream or canonical event; ``type`` selects the shape."""

EVENT_MODELS: dict[
    EventType, type[TradeShipmentEvent | ProjectMilestoneEvent | HiringReportEvent]
] = {
    EventType.TRADE_SHIPMENT: TradeShipmentEvent,
    EventType.PROJECT_MILESTONE: ProjectMilestoneEvent,
    EventType.HIRING_REPORT: HiringReportEvent,
}

event_adapter: TypeAdapter[TradeShipmentEvent | ProjectMilestoneEvent | HiringReportEvent] = (
    TypeAdapter(Event)
)
"""Validates a parsed JSON object into the right event model."""
