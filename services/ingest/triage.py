"""One upstream message in, exactly one outcome out: canonical, duplicate or dead letter.

Pure: no broker, clock or environment. The same function serves the Kafka and the HTTP paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import msgspec

from contracts.codec import (
    MAX_EVENT_BYTES,
    Headers,
    Rejected,
    RejectReason,
    check_headers,
    decode_record,
    encode_event,
)
from contracts.events import EventType, event_adapter
from contracts.keys import AnyEvent, canonical_key, partition_key
from contracts.normal_form import NormalEvent, read_normal_form
from contracts.normal_form import NormalEvent as Canonical  # a new event, published as it is
from services.ingest.dedup import PendingIds, Seen

__all__ = [
    "UNKNOWN_TYPE_LABEL",
    "Canonical",
    "DeadLetter",
    "Duplicate",
    "Outcome",
    "Scope",
    "SourceRecord",
    "triage",
    "type_label",
]

UNKNOWN_TYPE_LABEL = "unknown"


class SourceRecord(NamedTuple):
    """Where a message came from: a Kafka topic/partition/offset, or an HTTP request."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    """None for a Kafka tombstone."""
    expected_type: EventType | None
    headers: Headers = ()


class Duplicate(NamedTuple):
    event_id: str
    type: EventType
    value: bytes

    @property
    def event(self) -> AnyEvent:
        return event_adapter.validate_json(self.value)


class DeadLetter(NamedTuple):
    source: SourceRecord
    rejection: Rejected


Outcome = Canonical | Duplicate | DeadLetter

Scope = Callable[[str, str], "str | None"]
"""What the sender may publish: ``(event type, source)`` to the reason it may not, or ``None``."""


class _SourceField(msgspec.Struct, gc=False):
    source: str


_read_source = msgspec.json.Decoder(_SourceField).decode


def triage(source: SourceRecord, pending: PendingIds, scope: Scope | None = None) -> Outcome:
    """Decode ``source`` and classify it against the ids accepted so far.

    An event already in the contract's normal form is read without the contract models
    (``contracts.normal_form``, byte for byte the same outcome); anything else goes through the
    contract's decoder, which accepts or rejects it with the reason. A valid event outside the
    sender's ``scope`` is refused as ``forbidden`` before its id is remembered, so the right
    publisher can still send it."""
    value = source.value
    if (
        value is not None
        and len(value) <= MAX_EVENT_BYTES
        and (not source.headers or check_headers(source.headers) is None)
    ):
        normal = read_normal_form(value, source.expected_type)
        if normal is not None:
            if scope is not None:
                refusal = scope(normal.type, _read_source(normal.value).source)
                if refusal is not None:
                    return _forbidden(source, refusal)
            return _classify(normal, source, pending)
    result = decode_record(value, source.headers, expected_type=source.expected_type)
    if isinstance(result, Rejected):
        return DeadLetter(source, result)
    event = result.event
    if scope is not None:
        refusal = scope(event.type, event.source)
        if refusal is not None:
            return _forbidden(source, refusal)
    normal = NormalEvent(
        event.event_id, event.type, encode_event(event), canonical_key(event), partition_key(event)
    )
    return _classify(normal, source, pending)


def _forbidden(source: SourceRecord, refusal: str) -> DeadLetter:
    return DeadLetter(source, Rejected(RejectReason.FORBIDDEN, refusal))


def _classify(event: NormalEvent, source: SourceRecord, pending: PendingIds) -> Outcome:
    seen = pending.admit(event.event_id, event.value)
    if seen is Seen.NEW:
        return event
    if seen is Seen.DUPLICATE:
        return Duplicate(event.event_id, event.type, event.value)
    reused = Rejected(
        RejectReason.EVENT_ID_REUSED,
        f"event_id {event.event_id!r} was already accepted with different content; "
        "send a correction as a new event with the same natural key and a new event_id",
    )
    return DeadLetter(source, reused)


def type_label(outcome: Outcome) -> str:
    """The bounded ``type`` label for metrics: the event's type, the topic's, or ``unknown``."""
    if isinstance(outcome, DeadLetter):
        expected = outcome.source.expected_type
        return expected if expected is not None else UNKNOWN_TYPE_LABEL
    return outcome.type  # a StrEnum member: its value as a str
