"""Every Kafka topic of the product: name, key, value shape, who produces and who consumes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter

from contracts.events import (
    Event,
    EventType,
    HiringReportEvent,
    ProjectMilestoneEvent,
    TradeShipmentEvent,
)
from contracts.records import AlertTransition, DlqRecord, KpiSnapshot


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic. ``value`` is the pydantic model (or annotated union) of its messages."""

    name: str
    key: str
    value: Any
    producer: str
    consumers: tuple[str, ...]
    description: str
    event_type: EventType | None = None
    compacted: bool = False
    retention_ms: int | None = None

    def topic_config(self) -> dict[str, str]:
        """Broker configuration the topic is created with: compaction or a time retention
        (``-1``: kept forever). Both the services and the compose initialiser use it."""
        config = {}
        if self.compacted:
            config["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config

    def value_schema(self) -> dict[str, Any]:
        """JSON Schema of the message value."""
        if isinstance(self.value, type) and issubclass(self.value, BaseModel):
            return self.value.model_json_schema()
        return TypeAdapter(self.value).json_schema()


def _ms(period: timedelta) -> int:
    return int(period.total_seconds() * 1000)


UPSTREAM_RETENTION_MS = _ms(timedelta(days=7))
"""Upstream messages are re-read only after an outage; a week covers one."""
DLQ_RETENTION_MS = _ms(timedelta(days=30))
"""Rejected messages stay a month, long enough to fix the sender and replay them."""
FOREVER = -1

UPSTREAM = "upstream"
INGEST = "ingest"
METRICS = "metrics"
ALERTS = "alerts"

TRADE_SHIPMENTS = TopicSpec(
    name="roadmap.trade.shipments",
    key="shipment_id (any key is accepted; ingest re-keys)",
    value=TradeShipmentEvent,
    producer=UPSTREAM,
    consumers=(INGEST,),
    description="Shipments reported by customs and freight systems.",
    event_type=EventType.TRADE_SHIPMENT,
    retention_ms=UPSTREAM_RETENTION_MS,
)
PROJECT_MILESTONES = TopicSpec(
    name="roadmap.projects.milestones",
    key="project_id (any key is accepted; ingest re-keys)",
    value=ProjectMilestoneEvent,
    producer=UPSTREAM,
    consumers=(INGEST,),
    description="Project stages reported by the project office.",
    event_type=EventType.PROJECT_MILESTONE,
    retention_ms=UPSTREAM_RETENTION_MS,
)
HIRING_REPORTS = TopicSpec(
    name="roadmap.hiring.reports",
    key="project_id/period (any key is accepted; ingest re-keys)",
    value=HiringReportEvent,
    producer=UPSTREAM,
    consumers=(INGEST,),
    description="Monthly net hiring reported by employment agencies.",
    event_type=EventType.HIRING_REPORT,
    retention_ms=UPSTREAM_RETENTION_MS,
)
CANONICAL_EVENTS = TopicSpec(
    name="roadmap.events.v1",
    key=(
        "natural key and version: type/id[/period]@occurred_at/event_id "
        "(contracts.keys.canonical_key); partitioned by entity (contracts.keys.partition_key)"
    ),
    value=Event,
    producer=INGEST,
    consumers=(METRICS, ALERTS),
    description=(
        "Validated, normalised events; replaying it rebuilds every indicator. Alerts counts "
        "them (without decoding) for the DLQ share."
    ),
    compacted=True,
)
DEAD_LETTERS = TopicSpec(
    name="roadmap.events.dlq",
    key="the original message's key (sha256:<hex> of it when over DLQ_MAX_KEY_BYTES, 1 KiB)",
    value=DlqRecord,
    producer=INGEST,
    consumers=(ALERTS,),
    description="Rejected messages with the reason and the original bytes.",
    retention_ms=DLQ_RETENTION_MS,
)
KPI_SNAPSHOTS = TopicSpec(
    name="roadmap.kpi.v1",
    key="roadmap/indicator/partitions (e.g. kz-by-2025-2029/jobs_created/0,1,2)",
    value=KpiSnapshot,
    producer=METRICS,
    consumers=(ALERTS,),
    description="Indicator values against expected and target, when they change.",
    compacted=True,
)
ALERT_TRANSITIONS = TopicSpec(
    name="roadmap.alerts.v1",
    key="alert identity: roadmap/alertname/indicator (contracts.keys.alert_key)",
    value=AlertTransition,
    producer=ALERTS,
    consumers=(ALERTS,),
    description="Every alert state change; delivery to receivers consumes it.",
    retention_ms=FOREVER,  # the alert state is rebuilt from it at start-up
)

TOPICS: tuple[TopicSpec, ...] = (
    TRADE_SHIPMENTS,
    PROJECT_MILESTONES,
    HIRING_REPORTS,
    CANONICAL_EVENTS,
    DEAD_LETTERS,
    KPI_SNAPSHOTS,
    ALERT_TRANSITIONS,
)

UPSTREAM_TOPIC_BY_TYPE: dict[EventType, TopicSpec] = {
    spec.event_type: spec for spec in TOPICS if spec.event_type is not None
}


def topic(name: str) -> TopicSpec:
    """The spec of the topic called ``name``; ``KeyError`` if the product has no such topic."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
