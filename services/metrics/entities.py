"""What the fold keeps per natural key: a small tuple, not the event.

Amounts become integers in millionths (exact: amounts have at most 6 decimal places), dates
become day ordinals and codes are interned, so a million shipments fit in a few hundred MB.
A record's first two fields are its version: later ``occurred_at`` wins, ties by ``event_id``.
"""

from __future__ import annotations

import functools
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from contracts.events import EventType
from contracts.keys import AnyEvent

MICRO = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micro(amount: Decimal | int) -> int:
    """``amount`` in millionths, exactly."""
    return int(amount * MICRO)


def from_micro(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def timestamp_us(moment: datetime) -> int:
    """Microseconds since the epoch, computed without floating point."""
    since = (
        moment - _EPOCH
    )  # from the parts: half the cost of ``since // timedelta(microseconds=1)``
    return (since.days * 86_400 + since.seconds) * MICRO + since.microseconds


def from_timestamp_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def month_start(period: str) -> date:
    """The first day of a ``YYYY-MM`` period."""
    return date(int(period[:4]), int(period[5:7]), 1)


@functools.lru_cache(maxsize=1024)
def _month_day(period: str) -> int:
    """``month_start(period)`` as a day ordinal; periods repeat, one per month of reports."""
    return month_start(period).toordinal()


class Shipment(NamedTuple):
    version_us: int
    event_id: str
    origin: str
    destination: str
    mode: str
    commodity: str
    tonnes: int
    value_usd: int | None
    day: int


class Project(NamedTuple):
    version_us: int
    event_id: str
    project_id: str
    sector: str
    joint_venture: bool
    stage: str
    investment_usd: int
    planned_jobs: int
    day: int


class Hiring(NamedTuple):
    version_us: int
    event_id: str
    project_id: str
    jobs_created: int
    day: int


EntityRecord = Shipment | Project | Hiring


_intern = sys.intern
_held = tuple.__new__
"""``_held(Shipment, (...))`` builds the record without the named tuple's ``__new__`` written in
Python: a sixth of the cost of reading a shipment. The builders below pass every field, in
order (a unit test checks each builder's record against the named constructor)."""


def shipment_record(event: Any, version: int) -> tuple[EventType, str, EntityRecord]:
    data = event.data
    value = data.value_usd
    record = _held(
        Shipment,
        (
            version,
            event.event_id,
            _intern(data.origin),
            _intern(data.destination),
            data.mode,  # a StrEnum member: compares and hashes as its value, held once
            _intern(data.commodity),
            int(data.tonnes * MICRO),
            None if value is None else int(value * MICRO),
            data.shipped_on.toordinal(),
        ),
    )
    return EventType.TRADE_SHIPMENT, data.shipment_id, record


def project_record(event: Any, version: int) -> tuple[EventType, str, EntityRecord]:
    data = event.data
    record = _held(
        Project,
        (
            version,
            event.event_id,
            data.project_id,
            _intern(data.sector),
            data.joint_venture,
            data.stage,
            int(data.investment_usd * MICRO),
            data.planned_jobs * MICRO,
            data.reached_on.toordinal(),
        ),
    )
    return EventType.PROJECT_MILESTONE, data.project_id, record


def hiring_record(event: Any, version: int) -> tuple[EventType, str, EntityRecord]:
    data = event.data
    record = _held(
        Hiring,
        (
            version,
            event.event_id,
            data.project_id,
            data.jobs_created * MICRO,
            _month_day(data.period),
        ),
    )
    return EventType.HIRING_REPORT, f"{data.project_id}/{data.period}", record


# Each builder reads ``event.event_id``, ``event.data.<field>`` by attribute: a validated
# contract model, or the lighter structs ``canonical.py`` decodes ingest's canonical JSON into.
_RECORD_OF = {
    EventType.TRADE_SHIPMENT: shipment_record,
    EventType.PROJECT_MILESTONE: project_record,
    EventType.HIRING_REPORT: hiring_record,
}


def record_of(event: AnyEvent) -> tuple[EventType, str, EntityRecord]:
    """The event's type, the key it is held under within that type, and its compact record."""
    return _RECORD_OF[event.type](event, timestamp_us(event.occurred_at))
