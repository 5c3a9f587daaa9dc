"""Ingest's canonical JSON straight to the fold's records, without validating it a second time.

Ingest validated and normalised every canonical event (``contracts.codec``): amounts are decimal
strings, timestamps UTC, codes trimmed. Metrics used to run the whole pydantic validation again
on each record, which cost it three quarters of its time. Here msgspec decodes the canonical
form into plain structs (amounts as exact ``Decimal``, never through float), and the same
builders that serve the contract models (``entities.py``) turn them into records. A unit
property test checks that both ways give the same record for any valid event.

A record msgspec does not read as canonical (written by an older or another producer, say) goes
through the full contract validation instead; only what fails that too is not an event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from contracts.codec import Rejected, decode_event
from contracts.events import EventType, ProjectStage, TransportMode
from services.metrics.entities import (
    EntityRecord,
    hiring_record,
    project_record,
    record_of,
    shipment_record,
    timestamp_us,
)

Held = tuple[EventType, str, EntityRecord]
"""What the fold takes: the event's type, its key within the type, and its compact record."""


class NotAnEvent(ValueError):
    """Neither canonical JSON nor any valid event."""


class _Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    event_id: str
    schema_version: int
    occurred_at: datetime
    source: str


class _Shipment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    shipment_id: str
    origin: str
    destination: str
    mode: TransportMode
    commodity: str
    tonnes: Decimal
    value_usd: Decimal | None
    shipped_on: date


class _Project(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    project_id: str
    name: str
    sector: str
    joint_venture: bool
    investment_usd: Decimal
    stage: ProjectStage
    planned_jobs: int
    reached_on: date


class _Hiring(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    project_id: str
    period: str
    jobs_created: int
    reported_on: date


class _ShipmentEvent(_Envelope, frozen=True, tag_field="type", tag=EventType.TRADE_SHIPMENT.value):
    data: _Shipment


class _ProjectEvent(
    _Envelope, frozen=True, tag_field="type", tag=EventType.PROJECT_MILESTONE.value
):
    data: _Project


class _HiringEvent(_Envelope, frozen=True, tag_field="type", tag=EventType.HIRING_REPORT.value):
    data: _Hiring


_DECODER = msgspec.json.Decoder(_ShipmentEvent | _ProjectEvent | _HiringEvent)
_BUILD: dict[type[Any], Callable[[Any, int], Held]] = {
    _ShipmentEvent: shipment_record,
    _ProjectEvent: project_record,
    _HiringEvent: hiring_record,
}


def held_of(raw: bytes) -> Held:
    """The fold's record of one canonical record's value; ``NotAnEvent`` if it is none."""
    try:
        event = _DECODER.decode(raw)
    except msgspec.MsgspecError:
        return _validated(raw)
    if event.schema_version != 1:
        return _validated(raw)
    return _BUILD[type(event)](event, timestamp_us(event.occurred_at))


def _validated(raw: bytes) -> Held:
    result = decode_event(raw)
    if isinstance(result, Rejected):
        raise NotAnEvent(f"{result.reason.value}: {result.detail}")
    return record_of(result.event)
