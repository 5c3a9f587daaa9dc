"""Ingest's metrics, declared once against an injected registry.

Label values are closed sets (source, publisher, event type, reject reason, topic, partition),
so the number of series never depends on what upstream sends: ``publisher`` is ``kafka`` for
upstream topics, and for HTTP a name from the publishers file (or ``anonymous`` without one).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.codec import RejectReason
from contracts.events import EventType
from services.ingest.triage import UNKNOWN_TYPE_LABEL, Canonical, DeadLetter, Outcome, type_label

SOURCES = ("kafka", "http")
_TYPES = (*(t.value for t in EventType), UNKNOWN_TYPE_LABEL)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_SIZES = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)


class IngestMetrics:
    def __init__(
        self, registry: CollectorRegistry, http_publishers: Sequence[str] = ("anonymous",)
    ) -> None:
        self._publishers = {"kafka": ("kafka",), "http": tuple(http_publishers)}
        self.received = Counter(
            "roadmap_ingest_events_received",
            "Upstream messages processed, by source and type (on Kafka the topic's type; on HTTP "
            "the event's type if it is valid, else unknown).",
            ["source", "publisher", "type"],
            registry=registry,
        )
        self.accepted = Counter(
            "roadmap_ingest_events_accepted",
            "Events published as canonical events.",
            ["source", "publisher", "type"],
            registry=registry,
        )
        self.rejected = Counter(
            "roadmap_ingest_events_rejected",
            "Messages sent to the DLQ, by reason.",
            ["source", "publisher", "type", "reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "roadmap_ingest_events_duplicate",
            "Exact re-deliveries of an accepted event_id, dropped.",
            ["source", "publisher", "type"],
            registry=registry,
        )
        self.dlq_records = Counter(
            "roadmap_ingest_dlq_records", "Records published to the DLQ topic.", registry=registry
        )
        self.event_latency = Histogram(
            "roadmap_ingest_event_latency_seconds",
            "From the upstream message's broker timestamp to the broker acknowledging its outcome.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_duration = Histogram(
            "roadmap_ingest_batch_duration_seconds",
            "Time to triage and publish one batch.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "roadmap_ingest_batch_events",
            "Messages per processed batch.",
            ["source"],
            buckets=_BATCH_SIZES,
            registry=registry,
        )
        self.publish_failures = Counter(
            "roadmap_ingest_publish_failures",
            "Batches whose publish was not acknowledged; they are re-read and re-published.",
            registry=registry,
        )
        self.batch_errors = Counter(
            "roadmap_ingest_batch_errors",
            "Upstream batches an unexpected error kept from being processed (a bug): they are "
            "re-read, never skipped, and the watchdog reports the partition while it lasts.",
            registry=registry,
        )
        self.commit_failures = Counter(
            "roadmap_ingest_commit_failures",
            "Offset commits refused (e.g. by a rebalance); those records will be re-delivered.",
            registry=registry,
        )
        self.dedup_ids = Gauge(
            "roadmap_ingest_dedup_window_ids",
            "Accepted event ids remembered for duplicate detection.",
            registry=registry,
        )
        self.http_requests = Counter(
            "roadmap_ingest_http_requests",
            "POST /v1/events requests by status code.",
            ["code"],
            registry=registry,
        )
        self._zero_series()

    def _zero_series(self) -> None:
        # Every combination exists from the start, so rate() and sums never see a gap.
        for source in SOURCES:
            self.batch_duration.labels(source)
            self.batch_size.labels(source)
            for publisher in self._publishers[source]:
                for event_type in _TYPES:
                    self.received.labels(source, publisher, event_type)
                    self.accepted.labels(source, publisher, event_type)
                    self.duplicates.labels(source, publisher, event_type)
                    for reason in RejectReason:
                        self.rejected.labels(source, publisher, event_type, reason.value)

    def count(self, outcomes: Iterable[Outcome], *, source: str, publisher: str) -> None:
        """Count one processed batch, one ``inc`` per label combination rather than per event."""
        received: Tally[str] = Tally()
        accepted: Tally[str] = Tally()
        duplicates: Tally[str] = Tally()
        rejected: Tally[tuple[str, str]] = Tally()
        for outcome in outcomes:
            label = type_label(outcome)
            received[label] += 1
            if isinstance(outcome, Canonical):
                accepted[label] += 1
            elif isinstance(outcome, DeadLetter):
                rejected[label, outcome.rejection.reason.value] += 1
            else:
                duplicates[label] += 1
        for label, n in received.items():
            self.received.labels(source, publisher, label).inc(n)
        for label, n in accepted.items():
            self.accepted.labels(source, publisher, label).inc(n)
        for label, n in duplicates.items():
            self.duplicates.labels(source, publisher, label).inc(n)
        for (label, reason), n in rejected.items():
            self.rejected.labels(source, publisher, label, reason).inc(n)
        self.dlq_records.inc(sum(rejected.values()))
