"""Ingest metrics: every series exists at zero, and a counted batch adds up per type."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from contracts.codec import RejectReason
from contracts.events import EventType
from contracts.examples import valid_examples
from services.ingest.dedup import DedupWindow
from services.ingest.metrics import SOURCES, IngestMetrics
from services.ingest.triage import UNKNOWN_TYPE_LABEL, DeadLetter, Outcome, SourceRecord, triage

TYPES = [*(t.value for t in EventType), UNKNOWN_TYPE_LABEL]
RECEIVED = "roadmap_ingest_events_received_total"
ACCEPTED = "roadmap_ingest_events_accepted_total"
REJECTED = "roadmap_ingest_events_rejected_total"
DUPLICATES = "roadmap_ingest_events_duplicate_total"
DLQ_RECORDS = "roadmap_ingest_dlq_records_total"


DEFAULT_PUBLISHER = {"kafka": "kafka", "http": "anonymous"}


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sample's value; ``publisher`` defaults to the source's (kafka, or anonymous HTTP)."""
    if "source" in labels:
        labels.setdefault("publisher", DEFAULT_PUBLISHER[labels["source"]])
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"no series {name}{labels}"
    return value


def _mixed_outcomes() -> list[Outcome]:
    """A batch with accepted, duplicate, reused, mismatched and unparseable messages."""
    by_type = {e.event_type: e.raw for e in valid_examples()}
    shipment = by_type[EventType.TRADE_SHIPMENT]
    hiring = by_type[EventType.HIRING_REPORT]
    reused = json.loads(shipment)
    reused["data"]["tonnes"] = 1
    messages = [
        (shipment, EventType.TRADE_SHIPMENT),  # accepted
        (shipment, EventType.TRADE_SHIPMENT),  # duplicate
        (json.dumps(reused).encode(), EventType.TRADE_SHIPMENT),  # event_id_reused
        (hiring, EventType.TRADE_SHIPMENT),  # type_mismatch, labelled trade.shipment
        (hiring, EventType.HIRING_REPORT),  # accepted
        (b"{", EventType.HIRING_REPORT),  # not_json
        (b"[]", None),  # not_object, type unknown
    ]
    pending = DedupWindow(100).pending()
    return [
        triage(SourceRecord("t", 0, i, None, raw, expected), pending)
        for i, (raw, expected) in enumerate(messages)
    ]


@pytest.mark.parametrize("source", SOURCES)
def test_every_series_exists_at_zero_before_counting(source: str) -> None:
    """Before any batch, every source/type (and reason) combination reads 0, not absent."""
    registry = CollectorRegistry()
    IngestMetrics(registry)
    for event_type in TYPES:
        for name in (RECEIVED, ACCEPTED, DUPLICATES):
            assert _value(registry, name, source=source, type=event_type) == 0
        for reason in RejectReason:
            labels = {"source": source, "type": event_type, "reason": reason.value}
            assert _value(registry, REJECTED, **labels) == 0
    assert _value(registry, DLQ_RECORDS) == 0


def test_counted_batch_is_split_by_outcome_and_type() -> None:
    """Each outcome lands in accepted, duplicate or rejected (with its reason) under its type."""
    registry = CollectorRegistry()
    IngestMetrics(registry).count(_mixed_outcomes(), source="kafka", publisher="kafka")
    shipment, hiring = EventType.TRADE_SHIPMENT.value, EventType.HIRING_REPORT.value

    def rejected(event_type: str, reason: RejectReason) -> float:
        return _value(registry, REJECTED, source="kafka", type=event_type, reason=reason.value)

    assert _value(registry, RECEIVED, source="kafka", type=shipment) == 4
    assert _value(registry, ACCEPTED, source="kafka", type=shipment) == 1
    assert _value(registry, DUPLICATES, source="kafka", type=shipment) == 1
    assert rejected(shipment, RejectReason.EVENT_ID_REUSED) == 1
    assert rejected(shipment, RejectReason.TYPE_MISMATCH) == 1
    assert _value(registry, RECEIVED, source="kafka", type=hiring) == 2
    assert _value(registry, ACCEPTED, source="kafka", type=hiring) == 1
    assert rejected(hiring, RejectReason.NOT_JSON) == 1
    assert _value(registry, RECEIVED, source="kafka", type=UNKNOWN_TYPE_LABEL) == 1
    assert rejected(UNKNOWN_TYPE_LABEL, RejectReason.NOT_OBJECT) == 1
    assert _value(registry, RECEIVED, source="http", type=shipment) == 0


def test_received_is_accepted_plus_rejected_plus_duplicates_per_type() -> None:
    """For every type and source, received equals accepted + rejected (all reasons) + duplicates."""
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    outcomes = _mixed_outcomes()
    metrics.count(outcomes, source="kafka", publisher="kafka")
    metrics.count(outcomes[2:], source="kafka", publisher="kafka")
    metrics.count(outcomes, source="http", publisher="anonymous")
    total = 0.0
    for source in SOURCES:
        for event_type in TYPES:
            received = _value(registry, RECEIVED, source=source, type=event_type)
            parts = (
                _value(registry, ACCEPTED, source=source, type=event_type)
                + _value(registry, DUPLICATES, source=source, type=event_type)
                + sum(
                    _value(registry, REJECTED, source=source, type=event_type, reason=reason.value)
                    for reason in RejectReason
                )
            )
            assert received == parts, (source, event_type)
            total += received
    assert total == len(outcomes) + len(outcomes[2:]) + len(outcomes)


def test_dlq_records_equal_the_number_of_dead_letters() -> None:
    """dlq_records_total grows by the number of DeadLetter outcomes in each counted batch."""
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    outcomes = _mixed_outcomes()
    dead_letters = sum(isinstance(o, DeadLetter) for o in outcomes)
    assert dead_letters == 4
    metrics.count(outcomes, source="kafka", publisher="kafka")
    assert _value(registry, DLQ_RECORDS) == dead_letters
    metrics.count(outcomes, source="http", publisher="anonymous")
    assert _value(registry, DLQ_RECORDS) == 2 * dead_letters


def test_empty_batch_counts_nothing() -> None:
    """Counting no outcomes leaves every counter at zero."""
    registry = CollectorRegistry()
    IngestMetrics(registry).count([], source="http", publisher="anonymous")
    assert _value(registry, DLQ_RECORDS) == 0
    for event_type in TYPES:
        assert _value(registry, RECEIVED, source="http", type=event_type) == 0


def test_two_instances_use_separate_registries() -> None:
    """Metrics built on different registries do not share counts (nothing global)."""
    first, second = CollectorRegistry(), CollectorRegistry()
    IngestMetrics(first).count(_mixed_outcomes(), source="kafka", publisher="kafka")
    IngestMetrics(second)
    assert _value(first, DLQ_RECORDS) == 4
    assert _value(second, DLQ_RECORDS) == 0


def test_http_publishers_from_the_file_each_have_their_series() -> None:
    """With named publishers, each one's series exist at zero (and no anonymous ones), and a
    batch is counted under the publisher that sent it."""
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, ("customs-kz", "project-office"))
    shipment = EventType.TRADE_SHIPMENT.value
    for publisher in ("customs-kz", "project-office"):
        assert _value(registry, ACCEPTED, source="http", publisher=publisher, type=shipment) == 0
        labels = {"source": "http", "publisher": publisher, "type": shipment}
        assert _value(registry, REJECTED, **labels, reason=RejectReason.FORBIDDEN.value) == 0
    assert (
        registry.get_sample_value(
            ACCEPTED, {"source": "http", "publisher": "anonymous", "type": shipment}
        )
        is None
    )

    metrics.count(_mixed_outcomes(), source="http", publisher="customs-kz")

    assert _value(registry, ACCEPTED, source="http", publisher="customs-kz", type=shipment) == 1
    assert _value(registry, ACCEPTED, source="http", publisher="project-office", type=shipment) == 0
