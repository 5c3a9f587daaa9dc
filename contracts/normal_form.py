"""Events that upstream already sends in the contract's normal form, read without pydantic.

Most upstream events are already normal: codes in the case the contract folds them to, nothing
to trim, timestamps in UTC with a ``Z``, amounts as plain decimals. For those, validating with
the contract models and serialising them again costs ingest most of its time, and gives bytes
that can be written down directly. ``read_normal_form`` checks every rule of the contract that
such an event must meet, with msgspec for the shape and plain comparisons for the rest, and
returns the canonical bytes and keys. Whatever it is not sure of it leaves alone (``None``): the
contract's own decoder then reads it, accepts or rejects it, and says why. So it may pass on
events the contract would accept, never accept one the contract would not, and what it returns
is byte for byte what the contract's decoder gives: a property test holds it to that on
generated events, normal and not.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import msgspec

from contracts.events import EventType, ProjectStage, TransportMode, event_adapter
from contracts.fields import decimal_text, is_country_code
from contracts.keys import VERSION_SEPARATOR, AnyEvent

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_SNAKE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PLAIN_TEXT = re.compile(r"[ -!#-\[\]-~]+")
"""Printable ASCII without ``"`` or ``\\``: written into JSON as it is."""
_UTC_MOMENT = re.compile(
    r"([1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?Z"
)
"""Years from 1000 only: below, the contract's key writes the year without its leading zero."""
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_AMOUNT = re.compile(rb'"?([0-9]{1,18}(?:\.[0-9]{1,6})?)"?')
_CANONICAL_AMOUNT = re.compile(rb'"?((?:0|[1-9][0-9]{0,17})(?:\.[0-9]{0,5}[1-9])?)"?')
"""An amount already in canonical form: no leading zeros, no trailing zeros after the point."""
_MODES = frozenset(m.value for m in TransportMode)
_STAGES = frozenset(s.value for s in ProjectStage)
_COUNT_LIMIT = 10_000_000


class NormalEvent(NamedTuple):
    """An event read from its normal form: what ingest publishes for it."""

    event_id: str
    type: EventType
    value: bytes
    """The canonical JSON, as ``encode_event`` writes it."""
    key: bytes
    """``canonical_key``"""
    partition_key: bytes
    """``partition_key``"""

    @property
    def event(self) -> AnyEvent:
        """The event as a contract model, read back from ``value`` (not on the hot path)."""
        return event_adapter.validate_json(self.value)


class _Shipment(msgspec.Struct, forbid_unknown_fields=True):
    shipment_id: str
    origin: str
    destination: str
    mode: str
    commodity: str
    tonnes: msgspec.Raw
    shipped_on: str
    value_usd: msgspec.Raw = msgspec.Raw(b"null")  # msgspec.Raw takes no union with None


class _Project(msgspec.Struct, forbid_unknown_fields=True):
    project_id: str
    name: str
    sector: str
    joint_venture: bool
    investment_usd: msgspec.Raw
    stage: str
    planned_jobs: int
    reached_on: str


class _Hiring(msgspec.Struct, forbid_unknown_fields=True):
    project_id: str
    period: str
    jobs_created: int
    reported_on: str


class _ShipmentEvent(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="trade.shipment"
):
    event_id: str
    schema_version: int
    occurred_at: str
    source: str
    data: _Shipment


class _ProjectEvent(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="project.milestone"
):
    event_id: str
    schema_version: int
    occurred_at: str
    source: str
    data: _Project


class _HiringEvent(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="type", tag="hiring.report"
):
    event_id: str
    schema_version: int
    occurred_at: str
    source: str
    data: _Hiring


_DECODER = msgspec.json.Decoder(_ShipmentEvent | _ProjectEvent | _HiringEvent)


class _NotNormal(Exception):
    """Leave this event to the contract's decoder."""


def read_normal_form(raw: bytes, expected_type: EventType | None) -> NormalEvent | None:
    """``raw`` as ingest publishes it, if it is an event in normal form of ``expected_type``
    (any type when None); ``None`` for anything else, valid or not."""
    try:
        event = _DECODER.decode(raw)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: bad UTF-8
        return None
    try:
        if isinstance(event, _ShipmentEvent):
            return _shipment(event, expected_type)
        if isinstance(event, _ProjectEvent):
            return _project(event, expected_type)
        return _hiring(event, expected_type)
    except (_NotNormal, ValueError):
        return None


def _identifier(value: str) -> str:
    if _IDENTIFIER.fullmatch(value) is None:
        raise _NotNormal
    return value


def _text(value: str, longest: int) -> str:
    if len(value) > longest or _PLAIN_TEXT.fullmatch(value) is None or value != value.strip():
        raise _NotNormal
    return value


def _snake(value: str) -> str:
    if _SNAKE.fullmatch(value) is None:
        raise _NotNormal
    return value


def _country(value: str) -> str:
    if not (len(value) == 2 and value.isascii() and value.isupper() and is_country_code(value)):
        raise _NotNormal
    return value


def _day(value: str) -> str:
    if _DAY.fullmatch(value) is None:
        raise _NotNormal
    date.fromisoformat(value)  # an impossible date raises ValueError: not normal
    return value


def _count(value: int, lowest: int) -> int:
    if type(value) is not int or not lowest <= value <= _COUNT_LIMIT:
        raise _NotNormal
    return value


def _amount(raw: msgspec.Raw, *, positive: bool) -> str:
    """The canonical text of an amount written as a plain decimal (a JSON number or string)."""
    text = bytes(raw)
    as_written = _CANONICAL_AMOUNT.fullmatch(text)
    if as_written is not None and (text[:1] == b'"') == (text[-1:] == b'"'):
        digits = as_written.group(1).decode()  # already as decimal_text writes it
        if positive and digits == "0":
            raise _NotNormal
        return digits
    found = _AMOUNT.fullmatch(text)
    if found is None or (text[:1] == b'"') != (text[-1:] == b'"'):
        raise _NotNormal
    amount = Decimal(found.group(1).decode())
    if positive and not amount:
        raise _NotNormal
    return decimal_text(amount)


def _envelope(
    event: _ShipmentEvent | _ProjectEvent | _HiringEvent,
    event_type: EventType,
    expected_type: EventType | None,
) -> tuple[str, str, bytes]:
    """(canonical JSON up to ``data``, the key's version text, the key's version bytes)."""
    if expected_type is not None and event_type is not expected_type:
        raise _NotNormal
    if type(event.schema_version) is not int or event.schema_version != 1:
        raise _NotNormal
    event_id = _identifier(event.event_id)
    source = _text(event.source, 64)
    moment = _UTC_MOMENT.fullmatch(event.occurred_at)
    if moment is None:
        raise _NotNormal
    whole, fraction = moment.group(1), (moment.group(2) or "").ljust(6, "0")
    datetime.fromisoformat(whole)  # an impossible moment raises ValueError: not normal
    written = f"{whole}.{fraction}Z" if int(fraction) else f"{whole}Z"
    head = (
        f'{{"event_id":"{event_id}","schema_version":1,"occurred_at":"{written}",'
        f'"source":"{source}","type":"{event_type.value}","data":'
    )
    version = VERSION_SEPARATOR + f"{whole}.{fraction}Z/{event_id}".encode()
    return head, event_id, version


def _shipment(event: _ShipmentEvent, expected_type: EventType | None) -> NormalEvent:
    head, event_id, version = _envelope(event, EventType.TRADE_SHIPMENT, expected_type)
    data = event.data
    shipment_id = _identifier(data.shipment_id)
    if data.mode not in _MODES:
        raise _NotNormal
    given = data.value_usd
    value = "null" if bytes(given) == b"null" else f'"{_amount(given, positive=False)}"'
    body = (
        f'{head}{{"shipment_id":"{shipment_id}","origin":"{_country(data.origin)}",'
        f'"destination":"{_country(data.destination)}","mode":"{data.mode}",'
        f'"commodity":"{_snake(data.commodity)}","tonnes":"{_amount(data.tonnes, positive=True)}",'
        f'"value_usd":{value},"shipped_on":"{_day(data.shipped_on)}"}}}}'
    )
    entity = f"trade.shipment/{shipment_id}".encode()
    return NormalEvent(event_id, EventType.TRADE_SHIPMENT, body.encode(), entity + version, entity)


def _project(event: _ProjectEvent, expected_type: EventType | None) -> NormalEvent:
    head, event_id, version = _envelope(event, EventType.PROJECT_MILESTONE, expected_type)
    data = event.data
    project_id = _identifier(data.project_id)
    if data.stage not in _STAGES or type(data.joint_venture) is not bool:
        raise _NotNormal
    flag = "true" if data.joint_venture else "false"
    body = (
        f'{head}{{"project_id":"{project_id}","name":"{_text(data.name, 256)}",'
        f'"sector":"{_snake(data.sector)}","joint_venture":{flag},'
        f'"investment_usd":"{_amount(data.investment_usd, positive=False)}",'
        f'"stage":"{data.stage}","planned_jobs":{_count(data.planned_jobs, 0)},'
        f'"reached_on":"{_day(data.reached_on)}"}}}}'
    )
    key = f"project.milestone/{project_id}".encode() + version
    entity = f"project/{project_id}".encode()
    return NormalEvent(event_id, EventType.PROJECT_MILESTONE, body.encode(), key, entity)


def _hiring(event: _HiringEvent, expected_type: EventType | None) -> NormalEvent:
    head, event_id, version = _envelope(event, EventType.HIRING_REPORT, expected_type)
    data = event.data
    project_id = _identifier(data.project_id)
    if _MONTH.fullmatch(data.period) is None:
        raise _NotNormal
    body = (
        f'{head}{{"project_id":"{project_id}","period":"{data.period}",'
        f'"jobs_created":{_count(data.jobs_created, -_COUNT_LIMIT)},'
        f'"reported_on":"{_day(data.reported_on)}"}}}}'
    )
    key = f"hiring.report/{project_id}/{data.period}".encode() + version
    entity = f"project/{project_id}".encode()
    return NormalEvent(event_id, EventType.HIRING_REPORT, body.encode(), key, entity)
