"""Outcomes as outbound records: canonical events by natural key, DLQ records with headers."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.codec import RejectReason
from contracts.events import EventType, HiringReportEvent, ProjectMilestoneEvent
from contracts.examples import valid_examples
from contracts.records import (
    CANONICAL_HEADER_PUBLISHER,
    DLQ_HEADER_PUBLISHER,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION,
    DLQ_HEADER_SOURCE_TOPIC,
    DLQ_MAX_KEY_BYTES,
    DLQ_MAX_ORIGINAL_BYTES,
    DlqRecord,
)
from services.common.publishing import OutboundRecord
from services.ingest.dedup import DedupWindow
from services.ingest.http_api import HTTP_SOURCE
from services.ingest.outcomes import canonical_record, dlq_record, dlq_value, publisher_header
from services.ingest.triage import Canonical, DeadLetter, SourceRecord, triage

NOW = datetime(2025, 7, 1, 12, 30, 15, 250_000, tzinfo=timezone(timedelta(hours=5)))
DLQ_TOPIC = "roadmap.dlq.test"
SHIPMENTS_TOPIC = "roadmap.trade.shipments"
NEGATIVE_TONNES = (
    b'{"event_id": "e-1", "type": "trade.shipment", "schema_version": 1,'
    b' "occurred_at": "2025-03-14T10:00:00Z", "source": "kz-customs",'
    b' "data": {"shipment_id": "S-1", "origin": "KZ", "destination": "BY", "mode": "road",'
    b' "commodity": "wheat", "tonnes": -3, "shipped_on": "2025-03-13"}}'
)


def _dead_letter(
    value: bytes,
    *,
    topic: str = SHIPMENTS_TOPIC,
    partition: int | None = 2,
    offset: int | None = 41,
    key: bytes | None = b"upstream-key",
    expected_type: EventType | None = EventType.TRADE_SHIPMENT,
) -> DeadLetter:
    source = SourceRecord(topic, partition, offset, key, value, expected_type)
    outcome = triage(source, DedupWindow(10).pending())
    assert isinstance(outcome, DeadLetter), outcome
    return outcome


def _headers(record: OutboundRecord) -> dict[str, bytes]:
    names = [name for name, _ in record.headers]
    assert len(names) == len(set(names)), f"repeated header in {names}"
    return dict(record.headers)


def _parsed(record: OutboundRecord) -> DlqRecord:
    return DlqRecord.model_validate_json(record.value)


def test_canonical_record_is_keyed_by_natural_key() -> None:
    """The canonical record goes to the given topic with the outcome's key and canonical bytes."""
    example = valid_examples()[0]
    outcome = triage(
        SourceRecord("in", 0, 0, b"upstream-key", example.raw, None), DedupWindow(10).pending()
    )
    assert isinstance(outcome, Canonical)
    record = canonical_record(
        outcome, topic="roadmap.events.test", publisher=publisher_header("customs-kz")
    )
    assert record == OutboundRecord(
        "roadmap.events.test",
        outcome.key,
        outcome.value,
        ((CANONICAL_HEADER_PUBLISHER, b"customs-kz"),),
        partition_key=outcome.partition_key,
    )
    assert record.key != b"upstream-key"


def test_a_projects_milestones_and_hiring_reports_share_a_partition_key() -> None:
    """Milestones and hiring reports of one project are partitioned together; keys differ."""
    by_type = {e.event_type: e for e in valid_examples()}
    window = DedupWindow(10).pending()
    outcomes = [
        triage(SourceRecord("in", 0, i, None, by_type[t].raw, None), window)
        for i, t in enumerate([EventType.PROJECT_MILESTONE, EventType.HIRING_REPORT])
    ]
    milestone, hiring = outcomes
    assert isinstance(milestone, Canonical)
    assert isinstance(hiring, Canonical)
    assert isinstance(milestone.event, ProjectMilestoneEvent)
    assert isinstance(hiring.event, HiringReportEvent)
    assert milestone.partition_key == f"project/{milestone.event.data.project_id}".encode()
    assert hiring.partition_key == f"project/{hiring.event.data.project_id}".encode()
    assert milestone.key != hiring.key


def test_dlq_record_goes_to_the_dlq_topic_with_the_source_key() -> None:
    """The DLQ message is published on the given topic, keyed by the upstream message's key."""
    record = dlq_record(
        _dead_letter(NEGATIVE_TONNES, key=b"k-77"), topic=DLQ_TOPIC, now=NOW, publisher="kafka"
    )
    assert record.topic == DLQ_TOPIC
    assert record.key == b"k-77"


def test_dlq_record_keeps_a_key_at_the_limit() -> None:
    key = b"k" * DLQ_MAX_KEY_BYTES
    assert (
        dlq_record(_dead_letter(b"{}", key=key), topic=DLQ_TOPIC, now=NOW, publisher="kafka").key
        == key
    )


def test_dlq_record_of_a_huge_key_and_value_fits_a_default_broker_limit() -> None:
    """A 400 KiB key with a value over the cut: the key becomes its SHA-256 (the same for the
    same key) and key plus value stay under Kafka's default 1,048,588-byte message limit."""
    key = bytes(range(256)) * 1600
    original = b"\xff" * (DLQ_MAX_ORIGINAL_BYTES + 8 * 1024)
    record = dlq_record(
        _dead_letter(original, key=key), topic=DLQ_TOPIC, now=NOW, publisher="kafka"
    )
    again = dlq_record(_dead_letter(original, key=key), topic=DLQ_TOPIC, now=NOW, publisher="kafka")
    assert record.key == b"sha256:" + hashlib.sha256(key).hexdigest().encode()
    assert again.key == record.key
    assert len(record.key or b"") + len(record.value) < 1_048_588


def test_dlq_record_without_a_source_key_has_no_key() -> None:
    """An unkeyed upstream message (e.g. from HTTP) gives an unkeyed DLQ message."""
    record = dlq_record(_dead_letter(b"{}", key=None), topic=DLQ_TOPIC, now=NOW, publisher="kafka")
    assert record.key is None


def test_dlq_headers_carry_reason_and_source_position() -> None:
    """Headers hold the reason, source topic, partition and offset as UTF-8 text."""
    record = dlq_record(
        _dead_letter(NEGATIVE_TONNES, partition=2, offset=41),
        topic=DLQ_TOPIC,
        now=NOW,
        publisher="kafka",
    )
    assert _headers(record) == {
        DLQ_HEADER_REASON: b"schema",
        DLQ_HEADER_SOURCE_TOPIC: SHIPMENTS_TOPIC.encode(),
        DLQ_HEADER_PUBLISHER: b"kafka",
        DLQ_HEADER_SOURCE_PARTITION: b"2",
        DLQ_HEADER_SOURCE_OFFSET: b"41",
    }


def test_dlq_headers_keep_partition_and_offset_zero() -> None:
    """Partition 0 and offset 0 are real positions: their headers are present and say 0."""
    record = dlq_record(
        _dead_letter(b"[]", partition=0, offset=0), topic=DLQ_TOPIC, now=NOW, publisher="kafka"
    )
    headers = _headers(record)
    assert headers[DLQ_HEADER_SOURCE_PARTITION] == b"0"
    assert headers[DLQ_HEADER_SOURCE_OFFSET] == b"0"
    assert headers[DLQ_HEADER_REASON] == b"not_object"


def test_http_source_has_no_partition_or_offset_headers() -> None:
    """For an HTTP source (partition and offset None): reason, source topic and publisher."""
    outcome = _dead_letter(b"nope", topic=HTTP_SOURCE, partition=None, offset=None, key=None)
    record = dlq_record(outcome, topic=DLQ_TOPIC, now=NOW, publisher="project-office")
    assert _headers(record) == {
        DLQ_HEADER_REASON: b"not_json",
        DLQ_HEADER_SOURCE_TOPIC: HTTP_SOURCE.encode(),
        DLQ_HEADER_PUBLISHER: b"project-office",
    }
    parsed = _parsed(record)
    assert parsed.source_topic == HTTP_SOURCE
    assert parsed.source_partition is None
    assert parsed.source_offset is None


def test_dlq_value_parses_back_with_everything_about_the_rejection() -> None:
    """The JSON value round-trips through DlqRecord with reason, detail, errors and source."""
    outcome = _dead_letter(NEGATIVE_TONNES)
    parsed = _parsed(dlq_record(outcome, topic=DLQ_TOPIC, now=NOW, publisher="kafka"))
    assert parsed.reason is RejectReason.SCHEMA
    assert parsed.detail == outcome.rejection.detail
    assert "data.tonnes" in parsed.detail
    assert [(e.loc, e.type, e.message) for e in parsed.errors] == [
        (e.loc, e.type, e.message) for e in outcome.rejection.errors
    ]
    assert [e.loc for e in parsed.errors] == ["data.tonnes"]
    assert parsed.source_topic == SHIPMENTS_TOPIC
    assert parsed.source_partition == 2
    assert parsed.source_offset == 41
    assert parsed == dlq_value(outcome, now=NOW)


def test_dlq_value_errors_are_plain_json_objects() -> None:
    """Each error in the DLQ JSON is an object with exactly loc, type and message."""
    record = dlq_record(_dead_letter(NEGATIVE_TONNES), topic=DLQ_TOPIC, now=NOW, publisher="kafka")
    errors = json.loads(record.value)["errors"]
    assert errors, "a schema rejection carries its field errors"
    for error in errors:
        assert set(error) == {"loc", "type", "message"}
        assert all(isinstance(v, str) and v for v in error.values())


def test_rejected_at_is_the_injected_time() -> None:
    """rejected_at is the ``now`` passed in (the same instant, stored in UTC), not the clock."""
    parsed = _parsed(dlq_record(_dead_letter(b"nope"), topic=DLQ_TOPIC, now=NOW, publisher="kafka"))
    assert parsed.rejected_at == NOW
    assert parsed.rejected_at.utcoffset() == timedelta(0)
    assert parsed.rejected_at == datetime(2025, 7, 1, 7, 30, 15, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(NEGATIVE_TONNES, id="schema"),
        pytest.param(b"\xff\xfe\x00 not utf-8 \xe9", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"  padded  \n", id="whitespace"),
    ],
)
def test_original_bytes_are_kept_exactly(original: bytes) -> None:
    """original_base64 decodes to the exact bytes received, with their size, not truncated."""
    parsed = _parsed(
        dlq_record(_dead_letter(original), topic=DLQ_TOPIC, now=NOW, publisher="kafka")
    )
    assert base64.b64decode(parsed.original_base64, validate=True) == original
    assert parsed.original_size == len(original)
    assert parsed.original_truncated is False


def test_original_at_the_limit_is_not_truncated() -> None:
    """An original of exactly DLQ_MAX_ORIGINAL_BYTES is kept whole."""
    original = b"x" * DLQ_MAX_ORIGINAL_BYTES
    parsed = dlq_value(_dead_letter(original), now=NOW)
    assert parsed.reason is RejectReason.TOO_LARGE
    assert base64.b64decode(parsed.original_base64) == original
    assert parsed.original_truncated is False


def test_oversized_original_is_cut_to_the_limit() -> None:
    """Beyond DLQ_MAX_ORIGINAL_BYTES the original is cut to its first bytes and flagged."""
    original = bytes(range(256)) * (DLQ_MAX_ORIGINAL_BYTES // 256) + b"tail-beyond-the-limit"
    record = dlq_record(_dead_letter(original), topic=DLQ_TOPIC, now=NOW, publisher="kafka")
    parsed = _parsed(record)
    assert parsed.reason is RejectReason.TOO_LARGE
    kept = base64.b64decode(parsed.original_base64, validate=True)
    assert kept == original[:DLQ_MAX_ORIGINAL_BYTES]
    assert parsed.original_truncated is True
    assert parsed.original_size == len(original)
    assert len(record.value) < 1024 * 1024, "the DLQ record must fit a default broker limit"
