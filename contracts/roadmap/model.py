"""The roadmap file (``deploy/roadmap.yaml``): indicators, how each is computed, and its target.

Computation is a small closed grammar (DESIGN section 4): a ``sum`` of a numeric field, a
``count`` of entities, the ``share`` of one filtered sum in another, or the ``yoy_growth`` of a
windowed sum. Each reads the latest event per natural key of one event type, filtered by
``where`` and limited to a ``window`` on the event's business date. Everything an operator can
get wrong is checked here, so a bad file is refused at start-up with the field named.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from contracts.events import EVENT_MODELS, EventType, ProjectStage
from contracts.fields import CountryCode

_DURATION = re.compile(r"(\d+)([dhms])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}

BUSINESS_DATE_FIELD: dict[EventType, str] = {
    EventType.TRADE_SHIPMENT: "shipped_on",
    EventType.PROJECT_MILESTONE: "reached_on",
    EventType.HIRING_REPORT: "period",
}
"""The date a window is applied to, per event type (a month for hiring reports)."""

NUMERIC_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.TRADE_SHIPMENT: ("tonnes", "value_usd"),
    EventType.PROJECT_MILESTONE: ("investment_usd", "planned_jobs"),
    EventType.HIRING_REPORT: ("jobs_created",),
}
"""Fields that a ``sum`` may add up."""

FILTER_FIELDS: dict[EventType, tuple[str, ...]] = {
    EventType.TRADE_SHIPMENT: ("origin", "destination", "mode", "commodity"),
    EventType.PROJECT_MILESTONE: ("sector", "joint_venture", "stage", "project_id"),
    EventType.HIRING_REPORT: ("project_id",),
}
"""Fields that ``where`` may compare with one value or a list of values."""


class RoadmapModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: Any) -> timedelta:
    """``"45d"``, ``"12h"``, ``"30m"``, ``"90s"`` or a combination like ``"1d12h"``."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not value or _DURATION.sub("", value) != "":
        raise ValueError("must be a duration such as '45d', '12h', '30m' or '1d12h'")
    parts: dict[str, int] = {}
    for amount, unit in _DURATION.findall(value):
        parts[_DURATION_UNITS[unit]] = parts.get(_DURATION_UNITS[unit], 0) + int(amount)
    return timedelta(**parts)


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Window(StrEnum):
    """Which events count, by their business date, relative to the evaluation time."""

    ALL = "all"
    SINCE_START = "since_start"
    YEAR_TO_DATE = "year_to_date"


class Where(RoadmapModel):
    """Filters on the latest event of each entity; every condition must hold.

    ``fields`` compares a field with one value or any of a list; ``route_between`` keeps
    shipments going either way between two countries; ``stage_at_least`` keeps projects whose
    latest stage is live and at or past the given stage.
    """

    fields: dict[str, list[str | bool]] = Field(default_factory=dict)
    route_between: tuple[CountryCode, CountryCode] | None = None
    stage_at_least: ProjectStage | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_special_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        special = {"route_between", "stage_at_least"}
        plain = {
            key: value if isinstance(value, list) else [value]
            for key, value in data.items()
            if key not in special
        }
        return {"fields": plain, **{k: v for k, v in data.items() if k in special}}

    @field_validator("stage_at_least")
    @classmethod
    def _live_stage(cls, value: ProjectStage | None) -> ProjectStage | None:
        if value is ProjectStage.CANCELLED:
            raise ValueError("'cancelled' is not a live stage; use 'stage: cancelled' instead")
        return value

    def check_against(self, event_type: EventType) -> None:
        """Raise ``ValueError`` naming the first filter that ``event_type`` cannot satisfy."""
        data_model = EVENT_MODELS[event_type].model_fields["data"].annotation
        assert isinstance(data_model, type)
        assert issubclass(data_model, BaseModel)
        allowed = FILTER_FIELDS[event_type]
        for name, values in self.fields.items():
            if name not in allowed:
                raise ValueError(
                    f"{name!r} cannot filter {event_type.value} events; "
                    f"filterable fields: {', '.join(allowed)}"
                )
            # With its validators (country codes, snake_case codes), not just ``str``.
            checker: TypeAdapter[Any] = TypeAdapter(
                data_model.model_fields[name].rebuild_annotation()
            )
            for value in values:
                try:
                    checker.validate_python(value)
                except ValidationError as exc:
                    reason = exc.errors()[0]["msg"]
                    raise ValueError(f"{name}: {value!r} is not a valid value ({reason})") from None
        if self.route_between is not None and event_type is not EventType.TRADE_SHIPMENT:
            raise ValueError("route_between only applies to trade.shipment events")
        if self.stage_at_least is not None and event_type is not EventType.PROJECT_MILESTONE:
            raise ValueError("stage_at_least only applies to project.milestone events")


class EntitySelection(RoadmapModel):
    """The latest event of each entity of one type that matches ``where``."""

    event_type: EventType
    where: Where = Field(default_factory=Where)

    @field_validator("where")
    @classmethod
    def _filters_fit_type(cls, value: Where, info: ValidationInfo) -> Where:
        event_type = info.data.get("event_type")
        if event_type is not None:
            value.check_against(event_type)
        return value


class Measure(EntitySelection):
    """A sum of one numeric field over the selected entities."""

    field: StrictStr

    @field_validator("field")
    @classmethod
    def _numeric_field(cls, value: str, info: ValidationInfo) -> str:
        event_type = info.data.get("event_type")
        if event_type is not None and value not in NUMERIC_FIELDS[event_type]:
            numeric = ", ".join(NUMERIC_FIELDS[event_type])
            raise ValueError(
                f"{value!r} is not a numeric field of {event_type.value}; numeric fields: {numeric}"
            )
        return value


class SumOf(Measure):
    aggregation: Literal["sum"]
    window: Window = Window.SINCE_START


class CountOf(EntitySelection):
    """How many entities of one type have a latest event matching ``where``."""

    aggregation: Literal["count"]
    window: Window = Window.ALL


class ShareOf(RoadmapModel):
    """``numerator / denominator``, both sums over the same window; 0-1."""

    aggregation: Literal["share"]
    numerator: Measure
    denominator: Measure
    window: Window = Window.YEAR_TO_DATE


class GrowthOf(RoadmapModel):
    """Year-over-year growth of a windowed sum: this window over a year earlier, minus 1."""

    aggregation: Literal["yoy_growth"]
    measure: Measure
    window: Literal[Window.YEAR_TO_DATE] = Window.YEAR_TO_DATE


Computation = Annotated[SumOf | CountOf | ShareOf | GrowthOf, Field(discriminator="aggregation")]


class Checkpoint(RoadmapModel):
    """By ``date``, ``progress`` (0-1) of the way from baseline to target should be done."""

    date: date
    progress: Annotated[Decimal, Field(ge=0, le=1)]


class CheckpointTrajectory(RoadmapModel):
    checkpoints: list[Checkpoint] = Field(min_length=1)

    @field_validator("checkpoints")
    @classmethod
    def _ordered(cls, value: list[Checkpoint]) -> list[Checkpoint]:
        for earlier, later in pairwise(value):
            if later.date <= earlier.date:
                raise ValueError(
                    f"checkpoint dates must increase: {later.date} after {earlier.date}"
                )
            if later.progress < earlier.progress:
                raise ValueError(f"progress must not go down: {later.progress} on {later.date}")
        return value


def _trajectory_kind(value: Any) -> str:
    return "checkpoints" if isinstance(value, dict | CheckpointTrajectory) else "linear"


# A callable discriminator so that a bad checkpoint list is reported as that, and not also as
# "Input should be 'linear'" from the other branch of the union.
Trajectory = Annotated[
    Annotated[Literal["linear"], Tag("linear")]
    | Annotated[CheckpointTrajectory, Tag("checkpoints")],
    Discriminator(_trajectory_kind),
]

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": "^([0-9]+[dhms])+$", "examples": ["45d", "12h"]}),
]
"""A span written as ``45d``, ``12h``, ``30m``, ``90s`` or a combination (``1d12h``)."""


class Indicator(RoadmapModel):
    """One roadmap number to track: how to compute it and where it should be by when."""

    id: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    title: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    unit: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    compute: Computation
    baseline: Decimal
    target: Decimal
    start: date
    deadline: date
    trajectory: Trajectory = "linear"
    tolerance: Annotated[Decimal, Field(ge=0, lt=1)]
    severity: Severity
    owner: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    runbook: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    freshness: Duration = timedelta(days=45)
    pace_window: Duration = timedelta(days=180)
    """How far back a projection measures the pace (whole days; see ``projection.py``)."""
    source: Annotated[StrictStr, Field(max_length=500)] = ""

    @field_validator("pace_window")
    @classmethod
    def _whole_days(cls, value: timedelta) -> timedelta:
        if value < timedelta(days=1) or value % timedelta(days=1):
            raise ValueError(f"pace_window must be a whole number of days, at least 1d: {value}")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Indicator:
        if self.deadline <= self.start:
            raise ValueError(f"deadline {self.deadline} must be after start {self.start}")
        if isinstance(self.trajectory, CheckpointTrajectory):
            for checkpoint in self.trajectory.checkpoints:
                if not self.start < checkpoint.date < self.deadline:
                    raise ValueError(
                        f"checkpoint {checkpoint.date} is outside ({self.start}, {self.deadline})"
                    )
        return self


class RoadmapFile(RoadmapModel):
    """The whole file: which roadmap, and its indicators (ids unique)."""

    version: Literal[1]
    roadmap: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    indicators: list[Indicator] = Field(min_length=1)

    @field_validator("indicators")
    @classmethod
    def _unique_ids(cls, value: list[Indicator]) -> list[Indicator]:
        seen: set[str] = set()
        for indicator in value:
            if indicator.id in seen:
                raise ValueError(f"indicator id {indicator.id!r} appears twice")
            seen.add(indicator.id)
        return value

    def indicator(self, indicator_id: str) -> Indicator:
        """The indicator with ``indicator_id``; ``KeyError`` if there is none."""
        for indicator in self.indicators:
            if indicator.id == indicator_id:
                return indicator
        raise KeyError(indicator_id)
