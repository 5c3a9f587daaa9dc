"""The alerts service's metrics, declared once against an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.records import AlertName, AlertState

_DELIVERY_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class AlertsMetrics:
    def __init__(self, registry: CollectorRegistry, receivers: list[str]) -> None:
        self.alerts = Gauge(
            "roadmap_alerts_active",
            "Open alerts by name, severity and state (pending or firing).",
            ["alertname", "severity", "state"],
            registry=registry,
        )
        self.transitions = Counter(
            "roadmap_alerts_transitions",
            "Alert records published, by the state entered (a repeat counts as firing).",
            ["alertname", "state"],
            registry=registry,
        )
        self.evaluations = Counter(
            "roadmap_alerts_evaluations", "Evaluations of every indicator.", registry=registry
        )
        self.publish_failures = Counter(
            "roadmap_alerts_publish_failures",
            "Evaluations whose records the broker did not acknowledge (retried next time).",
            registry=registry,
        )
        self.snapshots = Counter(
            "roadmap_alerts_kpi_snapshots",
            "KPI snapshots read, by whether they were used.",
            ["outcome"],
            registry=registry,
        )
        self.dlq_ratio = Gauge(
            "roadmap_alerts_pipeline_dlq_ratio",
            "Share of ingest's output that went to the DLQ over the pipeline window (0 when the "
            "window holds no message).",
            registry=registry,
        )
        self.roadmap_time = Gauge(
            "roadmap_alerts_evaluation_timestamp_seconds",
            "The roadmap clock at the last evaluation (event time when ROADMAP_CLOCK=event).",
            registry=registry,
        )
        self.sent = Counter(
            "roadmap_alerts_notifications_sent",
            "Notifications a receiver accepted.",
            ["receiver"],
            registry=registry,
        )
        self.failed = Counter(
            "roadmap_alerts_notifications_failed",
            "Notifications given up on: refused with a 4xx, or out of retry budget.",
            ["receiver", "reason"],
            registry=registry,
        )
        self.retried = Counter(
            "roadmap_alerts_notifications_retried",
            "Attempts that failed and were retried, by receiver.",
            ["receiver"],
            registry=registry,
        )
        self.skipped = Counter(
            "roadmap_alerts_notifications_skipped",
            "Records a routed receiver did not want (a repeat inside its interval, a resolution "
            "it does not take).",
            ["receiver"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "roadmap_alerts_delivery_latency_seconds",
            "From an alert record's time to a receiver accepting it.",
            ["receiver"],
            buckets=_DELIVERY_SECONDS,
            registry=registry,
        )
        self.invalid_records = Counter(
            "roadmap_alerts_records_invalid",
            "Records on the alerts topic that are not alert records (skipped).",
            registry=registry,
        )
        for name in AlertName:
            for state in (AlertState.PENDING, AlertState.FIRING):
                self.transitions.labels(name.value, state.value)
        for receiver in receivers:
            self.sent.labels(receiver)
            self.retried.labels(receiver)
            self.skipped.labels(receiver)
            for reason in ("rejected", "gave_up"):
                self.failed.labels(receiver, reason)
