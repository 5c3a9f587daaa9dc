"""The metrics service's own pipeline metrics, declared once against an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.events import EventType
from services.metrics.fold import Applied

_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "roadmap_metrics_events",
            "Canonical events folded, by what they were: new key, correction, stale (older than "
            "the version held; ignored) or duplicate (the version held; ignored).",
            ["type", "outcome"],
            registry=registry,
        )
        self.invalid = Counter(
            "roadmap_metrics_events_invalid",
            "Records on the canonical topic that are not a canonical event (skipped).",
            registry=registry,
        )
        self.fold_seconds = Histogram(
            "roadmap_metrics_fold_seconds",
            "Time to decode and fold one fetched batch.",
            buckets=_SECONDS,
            registry=registry,
        )
        self.event_latency = Histogram(
            "roadmap_metrics_event_latency_seconds",
            "From the canonical record's broker timestamp to its fold, for records published "
            "after the partition was assigned (a replayed record's age is not a latency).",
            buckets=_SECONDS,
            registry=registry,
        )
        self.partitions_owned = Gauge(
            "roadmap_metrics_partitions_owned",
            "Canonical partitions this instance holds state for.",
            registry=registry,
        )
        self.partitions_replaying = Gauge(
            "roadmap_metrics_partitions_replaying",
            "Owned partitions still being replayed from the beginning (not ready).",
            registry=registry,
        )
        self.snapshots = Counter(
            "roadmap_metrics_kpi_snapshots",
            "KPI snapshots published.",
            registry=registry,
        )
        self.snapshot_failures = Counter(
            "roadmap_metrics_kpi_snapshot_failures",
            "KPI snapshot publishes that failed (retried at the next change or tick).",
            registry=registry,
        )
        for event_type in EventType:
            for outcome in Applied:
                self.events.labels(event_type.value, outcome.value)
