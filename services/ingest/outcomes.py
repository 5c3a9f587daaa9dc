"""Outcomes turned into outbound Kafka records: canonical events and DLQ records. Pure."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from contracts.codec import Headers, header_key_text, headers_size
from contracts.records import (
    CANONICAL_HEADER_PUBLISHER,
    DLQ_HEADER_PUBLISHER,
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION,
    DLQ_HEADER_SOURCE_TOPIC,
    DLQ_MAX_HEADER_BYTES,
    DLQ_MAX_KEY_BYTES,
    DLQ_MAX_ORIGINAL_BYTES,
    DlqHeader,
    DlqRecord,
)
from services.common.outbound import OutboundRecord
from services.ingest.triage import Canonical, DeadLetter


def publisher_header(publisher: str) -> tuple[str, bytes]:
    return (CANONICAL_HEADER_PUBLISHER, publisher.encode("utf-8"))


def canonical_record(
    outcome: Canonical, *, topic: str, publisher: tuple[str, bytes]
) -> OutboundRecord:
    """The canonical event: keyed by its natural key, partitioned by its entity, with who sent it
    (``publisher``: a ``publisher_header``, made once a batch)."""
    return OutboundRecord(
        topic, outcome.key, outcome.value, (publisher,), partition_key=outcome.partition_key
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def kept_headers(headers: Headers) -> tuple[list[DlqHeader], bool]:
    """The headers a DLQ record keeps, in order, up to ``DLQ_MAX_HEADER_BYTES``; and whether
    some were left out."""
    kept: list[DlqHeader] = []
    size = 0
    for key, value in headers:
        size += headers_size([(key, value)])
        if size > DLQ_MAX_HEADER_BYTES:
            return kept, True
        kept.append(
            DlqHeader(key=header_key_text(key), value_base64=None if value is None else _b64(value))
        )
    return kept, False


def dlq_value(outcome: DeadLetter, *, now: datetime) -> DlqRecord:
    """The DLQ record: why, where from, and the original bytes and headers (cut to a size any
    broker takes)."""
    source, rejection = outcome.source, outcome.rejection
    value = source.value or b""
    original = value[:DLQ_MAX_ORIGINAL_BYTES]
    headers, headers_cut = kept_headers(source.headers)
    return DlqRecord(
        reason=rejection.reason,
        detail=rejection.detail,
        errors=list(rejection.errors),
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        rejected_at=now,
        original_size=len(value),
        original_truncated=len(original) < len(value),
        original_base64=_b64(original),
        original_headers=headers,
        original_headers_truncated=headers_cut,
    )


def dlq_key(key: bytes | None) -> bytes | None:
    """The DLQ message's key: the original key, or its SHA-256 when it is over the limit."""
    if key is None or len(key) <= DLQ_MAX_KEY_BYTES:
        return key
    return b"sha256:" + hashlib.sha256(key).hexdigest().encode("ascii")


def dlq_record(outcome: DeadLetter, *, topic: str, now: datetime, publisher: str) -> OutboundRecord:
    """The DLQ message: the JSON record as value, the essentials again as headers."""
    source = outcome.source
    headers = [
        (DLQ_HEADER_REASON, outcome.rejection.reason.value.encode()),
        (DLQ_HEADER_SOURCE_TOPIC, source.topic.encode()),
        (DLQ_HEADER_PUBLISHER, publisher.encode()),
    ]
    if source.partition is not None:
        headers.append((DLQ_HEADER_SOURCE_PARTITION, str(source.partition).encode()))
    if source.offset is not None:
        headers.append((DLQ_HEADER_SOURCE_OFFSET, str(source.offset).encode()))
    value = dlq_value(outcome, now=now).model_dump_json().encode("utf-8")
    return OutboundRecord(topic, dlq_key(source.key), value, tuple(headers))
