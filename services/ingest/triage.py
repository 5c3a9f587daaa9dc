"""One upstream message in, exactly one outcome out: canonical, duplicate or dead letter.

Pure: no broker, clock or environment. The same function serves the Kafka and the HTTP paths.
"""

from __future__ import annotations

from typing import NamedTuple

from contracts.codec import Accepted, Headers, Rejected, RejectReason, decode_record, encode_event
from contracts.events import EventType
from contracts.keys import AnyEvent, canonical_key, partition_key
from services.ingest.dedup import PendingIds, Seen

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


class Canonical(NamedTuple):
    event: AnyEvent
    key: bytes
    value: bytes
    partition_key: bytes


class Duplicate(NamedTuple):
    event: AnyEvent


class DeadLetter(NamedTuple):
    source: SourceRecord
    rejection: Rejected


Outcome = Canonical | Duplicate | DeadLetter


def triage(source: SourceRecord, pending: PendingIds) -> Outcome:
    """Decode ``source`` and classify it against the ids accepted so far."""
    result = decode_record(source.value, source.headers, expected_type=source.expected_type)
    if isinstance(result, Rejected):
        return DeadLetter(source, result)
    return _classify(result, source, pending)


def _classify(result: Accepted, source: SourceRecord, pending: PendingIds) -> Outcome:
    event = result.event
    value = encode_event(event)
    seen = pending.admit(event.event_id, value)
    if seen is Seen.NEW:
        return Canonical(event, canonical_key(event), value, partition_key(event))
    if seen is Seen.DUPLICATE:
        return Duplicate(event)
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
    return outcome.event.type  # a StrEnum member: its value as a str
