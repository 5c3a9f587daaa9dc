"""A batch whose partitions were taken away (a rebalance) while it was being handled.

aiokafka's ``highwater()`` asserts that the partition is still assigned. Ingest's handler used
to ask it for every partition of the batch after committing, and metrics' for every partition
it had folded: a rebalance during the batch raised out of the handler, and metrics then skipped
the batch's KPI snapshot. The handlers here run on a real (unstarted) aiokafka consumer that no
longer has the batch's partitions, with in-memory publishers in place of the producer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import EventType
from contracts.examples import valid_examples
from contracts.keys import AnyEvent
from contracts.roadmap.loader import load_roadmap
from contracts.topics import CANONICAL_EVENTS, TRADE_SHIPMENTS
from services.common.config import KafkaSettings
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.watchdog import ConsumerGauges
from services.ingest.consumer import UpstreamConsumer
from services.ingest.dedup import DedupWindow
from services.ingest.metrics import IngestMetrics
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings
from services.metrics.consumer import CanonicalConsumer
from services.metrics.fold import PartitionState
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import compile_roadmap
from services.metrics.settings import MetricsSettings

SHIPMENT = next(e for e in valid_examples() if e.name.startswith("trade.shipment/road"))


@dataclass
class InMemoryPublisher:
    """Stands in for the batch publisher (the raw aiokafka producer): keeps what it was given."""

    published: list[OutboundRecord] = field(default_factory=list)

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        self.published.extend(records)


@dataclass
class Batch:
    """What the handlers read of FastStream's message: the raw records, ack and nack."""

    raw_message: tuple[ConsumerRecord[bytes, bytes], ...]
    acked: int = 0

    async def ack(self) -> None:
        self.acked += 1

    async def nack(self) -> None:
        raise AssertionError("not expected here")


def _record(topic: str, partition: int, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic, partition, offset, 1_700_000_000_000, 0, None, value, None, 0, len(value), ()
    )


def _consumer_owning(*partitions: TopicPartition) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    consumer.assign(list(partitions))
    return consumer


def _upstream_consumer(
    publisher: InMemoryPublisher, *, owning: int
) -> tuple[UpstreamConsumer, IngestMetrics, CollectorRegistry]:
    """Ingest's Kafka handler on a real pipeline publishing to ``publisher``, its consumer
    owning partition ``owning`` of the shipments topic."""
    kafka = KafkaSettings()
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    pipeline = IngestPipeline(
        cast(BatchPublisher, publisher),
        DedupWindow(100),
        metrics,
        lambda: datetime(2026, 12, 1, tzinfo=UTC),
        canonical_topic=CANONICAL_EVENTS.name,
        dlq_topic="roadmap.events.dlq",
    )
    upstream = UpstreamConsumer(
        make_broker(kafka, service="ingest"),
        IngestSettings(kafka=kafka),
        pipeline,
        metrics,
        ConsumerGauges(registry),
    )
    upstream.subscriber.consumer = _consumer_owning(TopicPartition(TRADE_SHIPMENTS.name, owning))
    return upstream, metrics, registry


async def test_ingest_handles_and_commits_a_batch_whose_partition_was_revoked() -> None:
    publisher = InMemoryPublisher()
    upstream, metrics, _ = _upstream_consumer(publisher, owning=2)
    batch = Batch((_record(TRADE_SHIPMENTS.name, 0, 41, SHIPMENT.raw),))
    await upstream.on_upstream_batch(cast(Any, batch))
    assert [r.topic for r in publisher.published] == [CANONICAL_EVENTS.name]
    assert batch.acked == 1
    assert metrics.event_latency._sum.get() > 0  # the batch was counted to the end


async def test_metrics_publishes_the_snapshot_after_a_batch_whose_partition_was_revoked() -> None:
    kafka = KafkaSettings()
    settings = MetricsSettings(kafka=kafka)
    plan = compile_roadmap(load_roadmap(settings.roadmap_file))
    registry = CollectorRegistry()
    snapshots_asked = []

    async def after_batch() -> None:
        snapshots_asked.append(True)

    canonical = CanonicalConsumer(
        make_broker(kafka, service="metrics"),
        settings,
        plan,
        PipelineMetrics(registry),
        ConsumerGauges(registry),
        topic=CANONICAL_EVENTS.name,
        after_batch=after_batch,
    )
    canonical.states[0] = PartitionState(plan)  # folded here before the rebalance took it
    canonical.subscriber.consumer = _consumer_owning(TopicPartition(CANONICAL_EVENTS.name, 1))
    value = encode_event(_decoded())
    batch = Batch((_record(CANONICAL_EVENTS.name, 0, 0, value),))
    await canonical.on_canonical_batch(cast(Any, batch))
    assert snapshots_asked == [True]
    assert len(canonical.states[0].entities[EventType.TRADE_SHIPMENT]) == 1  # folded


def _decoded() -> AnyEvent:
    result = decode_event(SHIPMENT.raw)
    assert isinstance(result, Accepted)
    return result.event
