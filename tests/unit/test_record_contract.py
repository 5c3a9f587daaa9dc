"""What real producers send beside the value: tombstones and headers. Each refused record gets a
machine-readable reason, and the DLQ record keeps its headers for replay."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from contracts.codec import (
    MAX_HEADER_BYTES,
    Accepted,
    Headers,
    Rejected,
    RejectReason,
    check_headers,
    decode_record,
    header_key_text,
)
from contracts.events import EventType
from contracts.examples import valid_examples
from contracts.records import DLQ_MAX_HEADER_BYTES, DlqRecord
from services.ingest.dedup import DedupWindow
from services.ingest.outcomes import dlq_record, kept_headers
from services.ingest.triage import Canonical, DeadLetter, SourceRecord, triage

SHIPMENT = next(e for e in valid_examples() if e.name.startswith("trade.shipment/road_flour"))
NOT_UTF8_KEY = b"\xff\xfe".decode("utf-8", "surrogateescape")
"""A header key as the fetch guard hands it over when its bytes were not UTF-8."""
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _source(value: bytes | None, headers: Headers) -> SourceRecord:
    return SourceRecord(
        "roadmap.trade.shipments", 1, 42, b"key", value, EventType.TRADE_SHIPMENT, headers
    )


def _rejected(value: bytes | None, headers: Headers) -> Rejected:
    result = decode_record(value, headers, expected_type=EventType.TRADE_SHIPMENT)
    assert isinstance(result, Rejected), result
    return result


def test_a_tombstone_is_refused_as_such() -> None:
    """A null value is not an empty value: it has its own reason, and says what to do instead."""
    refused = _rejected(None, [])
    assert refused.reason is RejectReason.TOMBSTONE
    assert "correction" in refused.detail
    assert _rejected(b"", []).reason is RejectReason.NOT_JSON


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
        [("content-type", b"application/json"), ("x-null", None), ("\u00e9t\u00e9", b"\xc3\xa9")],
        [("big", b"x" * (MAX_HEADER_BYTES - 3))],
    ],
    ids=["none", "trace", "null value and non-ASCII UTF-8", "at the limit"],
)
def test_acceptable_headers_do_not_change_the_outcome(
    headers: list[tuple[str, bytes | None]],
) -> None:
    """Text headers up to the limit, null values among them, pass; the event is accepted."""
    assert check_headers(headers) is None
    assert isinstance(
        decode_record(SHIPMENT.raw, headers, expected_type=EventType.TRADE_SHIPMENT), Accepted
    )


def test_headers_over_the_limit_are_refused_with_their_size() -> None:
    headers = [("a", b"x" * 10_000), ("b", b"y" * (MAX_HEADER_BYTES - 10_000))]
    refused = _rejected(SHIPMENT.raw, headers)
    assert refused.reason is RejectReason.HEADERS_TOO_LARGE
    assert refused.detail == "2 headers of 16,386 bytes; the limit is 16,384"


def test_a_header_key_that_is_not_utf8_is_refused_and_shown_escaped() -> None:
    refused = _rejected(SHIPMENT.raw, [("ok", b"1"), (NOT_UTF8_KEY, b"v")])
    assert refused.reason is RejectReason.HEADERS_NOT_UTF8
    assert refused.detail == "header 1 has a key that is not UTF-8: '\\\\xff\\\\xfe'"


def test_a_header_value_that_is_not_utf8_is_refused_naming_the_header() -> None:
    refused = _rejected(SHIPMENT.raw, [("schema-id", b"\x00\x00\x01\x9f")])
    assert refused.reason is RejectReason.HEADERS_NOT_UTF8
    assert refused.detail == "header 'schema-id' has a value that is not UTF-8 (invalid byte at 3)"


def test_headers_are_judged_before_the_value() -> None:
    """Outside in: a tombstone first, then the headers, then the value's own checks."""
    assert _rejected(None, [(NOT_UTF8_KEY, b"v")]).reason is RejectReason.TOMBSTONE
    bad_value_bad_headers = _rejected(b"\xff", [("h", b"\xff")])
    assert bad_value_bad_headers.reason is RejectReason.HEADERS_NOT_UTF8


def test_triage_dead_letters_each_and_accepts_the_same_event_with_clean_headers() -> None:
    pending = DedupWindow(10).pending()
    assert isinstance(triage(_source(SHIPMENT.raw, [("h", b"\x80")]), pending), DeadLetter)
    assert isinstance(triage(_source(None, []), pending), DeadLetter)
    assert isinstance(triage(_source(SHIPMENT.raw, [("h", b"ok")]), pending), Canonical)


def test_the_dlq_record_keeps_the_headers_in_order_with_null_values_and_escaped_keys() -> None:
    headers = [("trace", b"abc"), (NOT_UTF8_KEY, b"\x00\xff"), ("empty", None), (" pad ", b"")]
    outcome = triage(_source(SHIPMENT.raw, headers), DedupWindow(10).pending())
    assert isinstance(outcome, DeadLetter)
    record = DlqRecord.model_validate_json(
        dlq_record(outcome, topic="dlq", now=NOW, publisher="kafka").value
    )
    assert record.reason is RejectReason.HEADERS_NOT_UTF8
    assert [(h.key, h.value_base64) for h in record.original_headers] == [
        ("trace", base64.b64encode(b"abc").decode()),
        ("\\xff\\xfe", base64.b64encode(b"\x00\xff").decode()),
        ("empty", None),
        (" pad ", ""),
    ]
    assert record.original_headers_truncated is False
    assert base64.b64decode(record.original_base64) == SHIPMENT.raw


def test_a_tombstone_on_the_dlq_has_no_original_bytes() -> None:
    outcome = triage(_source(None, [("why", b"delete")]), DedupWindow(10).pending())
    assert isinstance(outcome, DeadLetter)
    value = json.loads(dlq_record(outcome, topic="dlq", now=NOW, publisher="kafka").value)
    assert value["reason"] == "tombstone"
    assert value["original_size"] == 0
    assert value["original_base64"] == ""
    assert value["original_headers"] == [{"key": "why", "value_base64": "ZGVsZXRl"}]


def test_oversized_headers_are_kept_up_to_the_dlq_limit_and_marked_cut() -> None:
    """The DLQ record must fit a broker's 1 MB limit: headers past 16 KiB are left out."""
    headers = [(f"h{i}", b"x" * 6_000) for i in range(100)]  # about 600 KB
    kept, cut = kept_headers(headers)
    assert cut is True
    assert [h.key for h in kept] == ["h0", "h1"]
    outcome = triage(_source(SHIPMENT.raw, headers), DedupWindow(10).pending())
    assert isinstance(outcome, DeadLetter)
    assert outcome.rejection.reason is RejectReason.HEADERS_TOO_LARGE
    value = dlq_record(outcome, topic="dlq", now=NOW, publisher="kafka").value
    assert len(value) < 64 * 1024
    assert DLQ_MAX_HEADER_BYTES == MAX_HEADER_BYTES


def test_header_key_text_leaves_utf8_alone() -> None:
    assert header_key_text("caf\u00e9") == "caf\u00e9"
    assert header_key_text(NOT_UTF8_KEY) == "\\xff\\xfe"
