"""The roadmap file compiled for the fold: each indicator becomes one or two *slots*.

A slot selects entities of one type (``where``) and says how much each adds (a field in
millionths, or one for a count). The fold keeps, per slot, sums by business day; an indicator's
window is applied when it is read, so the same sums serve any evaluation time. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from pydantic import BaseModel, TypeAdapter

from contracts.events import EVENT_MODELS, EventType, ProjectStage
from contracts.roadmap.components import Aggregation
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
from services.metrics.entities import MICRO, EntityRecord

Kind = Aggregation
Predicate = Callable[[Any], bool]
Amount = Callable[[Any], int | None]


@dataclass(frozen=True, slots=True)
class Slot:
    event_type: EventType
    matches: Predicate
    amount: Amount
    reads: tuple[str, ...] = ()
    """The record fields ``matches`` looks at (and nothing else)."""


SELECTIONS_REMEMBERED = 4096
"""Per event type, how many distinct combinations of filtered values ``Selection`` keeps."""


class Selection:
    """Which of one event type's slots a record counts in, remembered per combination of the
    values the slots' filters read.

    Filters read a few code fields (origin, mode, commodity, stage, ...), which take few
    distinct values, so the answer for a record is nearly always one dictionary lookup instead
    of a call per slot: a fifth of the fold's time. The memory is bounded: past
    ``limit`` combinations (a filter on an id field, say), the rest are worked out each time.
    """

    def __init__(self, slots: Sequence[tuple[int, Slot]], limit: int = SELECTIONS_REMEMBERED):
        fields = sorted({name for _, slot in slots for name in slot.reads})
        self._key: Callable[[Any], Any] = attrgetter(*fields) if fields else _nothing
        self._slots = tuple(slots)
        self._limit = limit
        self._known: dict[Any, tuple[tuple[int, Amount], ...]] = {}

    def of(self, record: Any) -> tuple[tuple[int, Amount], ...]:
        """``(slot index, its amount function)`` for every slot ``record`` is selected by."""
        key = self._key(record)
        found = self._known.get(key)
        if found is None:
            found = tuple(
                (index, slot.amount) for index, slot in self._slots if slot.matches(record)
            )
            if len(self._known) < self._limit:
                self._known[key] = found
        return found


def _nothing(_record: Any) -> tuple[()]:
    return ()


@dataclass(frozen=True, slots=True)
class IndicatorPlan:
    indicator: Indicator
    kind: Kind
    window: Window
    slots: tuple[int, ...]
    """Indices into ``RoadmapPlan.slots``: one, or two for ``share`` (numerator, denominator)."""


@dataclass(frozen=True, slots=True)
class RoadmapPlan:
    roadmap: str
    indicators: tuple[IndicatorPlan, ...]
    slots: tuple[Slot, ...]
    slots_by_type: dict[EventType, tuple[int, ...]]
    selections: dict[EventType, Selection]

    def indicator(self, indicator_id: str) -> IndicatorPlan:
        for plan in self.indicators:
            if plan.indicator.id == indicator_id:
                return plan
        raise KeyError(indicator_id)


def _normalised(event_type: EventType, field: str, values: list[str | bool]) -> frozenset[Any]:
    """The filter's values as the canonical events hold them (``kz`` becomes ``KZ``)."""
    data_model = EVENT_MODELS[event_type].model_fields["data"].annotation
    assert isinstance(data_model, type)
    assert issubclass(data_model, BaseModel)
    # The full annotation with its validators: a bare ``str`` would leave ``kz`` as it is.
    adapter: TypeAdapter[Any] = TypeAdapter(data_model.model_fields[field].rebuild_annotation())
    normalised = set()
    for value in values:
        parsed = adapter.validate_python(value)
        normalised.add(getattr(parsed, "value", parsed))  # enums are held as their value
    return frozenset(normalised)


def _one_of(field: str, allowed: frozenset[Any]) -> Predicate:
    get = attrgetter(field)

    def check(record: Any) -> bool:
        return get(record) in allowed

    return check


def _both(first: Predicate, second: Predicate) -> Predicate:
    # Nested pairs rather than all() over a generator: half the cost per event.
    return lambda record: first(record) and second(record)


def compile_where(event_type: EventType, where: Where) -> Predicate:
    """A predicate on an entity record for ``where`` (every condition must hold)."""
    checks: list[Predicate] = []
    for field, values in where.fields.items():
        checks.append(_one_of(field, _normalised(event_type, field, values)))
    if where.route_between is not None:
        a, b = where.route_between
        routes = frozenset({(a, b), (b, a)})
        checks.append(lambda record: (record.origin, record.destination) in routes)
    if where.stage_at_least is not None:
        floor = where.stage_at_least
        live = frozenset(s.value for s in ProjectStage if s.is_at_least(floor))
        checks.append(lambda record: record.stage in live)
    if not checks:
        return lambda _record: True
    if len(checks) == 1:
        return checks[0]
    combined = checks[0]
    for check in checks[1:]:
        combined = _both(combined, check)
    return combined


def fields_read(where: Where) -> tuple[str, ...]:
    """The record fields the predicate ``compile_where`` makes of ``where`` reads."""
    read = set(where.fields)
    if where.route_between is not None:
        read |= {"origin", "destination"}
    if where.stage_at_least is not None:
        read.add("stage")
    return tuple(sorted(read))


def _measure_slot(measure: Measure) -> Slot:
    return Slot(
        measure.event_type,
        compile_where(measure.event_type, measure.where),
        attrgetter(measure.field),
        fields_read(measure.where),
    )


def _count_slot(count: CountOf) -> Slot:
    return Slot(
        count.event_type,
        compile_where(count.event_type, count.where),
        lambda _r: MICRO,
        fields_read(count.where),
    )


def _as_measure(compute: SumOf) -> Measure:
    return Measure(event_type=compute.event_type, where=compute.where, field=compute.field)


def compile_roadmap(roadmap: RoadmapFile) -> RoadmapPlan:
    """Every indicator of ``roadmap`` as slots the fold can fill."""
    slots: list[Slot] = []
    plans: list[IndicatorPlan] = []
    known: dict[str, int] = {}

    def add(selection: Measure | CountOf) -> int:
        # Indicators that select and measure the same thing share one slot (and its sums).
        what = selection.model_dump_json(exclude={"aggregation", "window"})
        identity = f"{type(selection).__name__}:{what}"
        if identity not in known:
            known[identity] = len(slots)
            slots.append(
                _count_slot(selection)
                if isinstance(selection, CountOf)
                else _measure_slot(selection)
            )
        return known[identity]

    for indicator in roadmap.indicators:
        compute = indicator.compute
        match compute:
            case SumOf():
                plan = IndicatorPlan(indicator, "sum", compute.window, (add(_as_measure(compute)),))
            case CountOf():
                plan = IndicatorPlan(indicator, "count", compute.window, (add(compute),))
            case ShareOf():
                numerator = add(compute.numerator)
                denominator = add(compute.denominator)
                plan = IndicatorPlan(indicator, "share", compute.window, (numerator, denominator))
            case GrowthOf():
                plan = IndicatorPlan(
                    indicator, "yoy_growth", compute.window, (add(compute.measure),)
                )
        plans.append(plan)
    by_type = {
        event_type: tuple(i for i, slot in enumerate(slots) if slot.event_type is event_type)
        for event_type in EventType
    }
    selections = {
        event_type: Selection([(i, slots[i]) for i in indices])
        for event_type, indices in by_type.items()
    }
    return RoadmapPlan(roadmap.roadmap, tuple(plans), tuple(slots), by_type, selections)


def contributions(
    plan: RoadmapPlan, event_type: EventType, record: EntityRecord
) -> Iterator[tuple[int, int]]:
    """``(slot, amount)`` for every slot ``record`` counts in, with what it adds there."""
    for index, amount_of in plan.selections[event_type].of(record):
        amount = amount_of(record)
        if amount is not None:
            yield index, amount
