"""The Kafka side of ingest: one batch subscriber over the three upstream topics.

Acknowledgement is manual and deliberate (FastStream's default would auto-commit, i.e. at most
once): a batch's offsets are committed only after every outcome was acknowledged by the broker.
A batch is all or nothing, so when its publish fails or its handling raises, the batch policy
(``services.common.batch_policy``) rewinds each partition to the batch's first record and reads
it again after a back-off; a refused commit (a rebalance) means re-delivery, never loss. A
progress watchdog reports a partition that has records to read and does not move
(``INGEST_STALL_AFTER``).
"""

from __future__ import annotations

import logging
import time

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.batch_policy import Progress, Seeker
from services.common.histograms import observe_all
from services.common.http import CheckResult
from services.common.kafka import batch_records, consumer_options, no_decoding, raw_headers
from services.common.publishing import PublishError
from services.common.watchdog import ConsumerGauges, subscriber_watchdog
from services.ingest.metrics import IngestMetrics
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings
from services.ingest.triage import SourceRecord

log = logging.getLogger(__name__)


def _names(partitions: list[TopicPartition]) -> str:
    return ",".join(sorted(f"{tp.topic}:{tp.partition}" for tp in partitions))


class _AssignmentTracker(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned_once = False

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            log.info("partitions revoked", extra={"partitions": _names(revoked)})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.assigned_once = True
        log.info("partitions assigned", extra={"partitions": _names(assigned)})


class UpstreamConsumer:
    """Wires the upstream subscriber into ``broker``, with a progress watchdog over it."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: IngestSettings,
        pipeline: IngestPipeline,
        metrics: IngestMetrics,
        gauges: ConsumerGauges,
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._settings = settings
        self._tracker = _AssignmentTracker()
        self._type_by_topic = {
            settings.kafka.topic_name(spec): event_type
            for event_type, spec in UPSTREAM_TOPIC_BY_TYPE.items()
        }
        self.subscriber = broker.subscriber(
            *self._type_by_topic,
            batch=True,
            group_id=settings.group_id,
            auto_offset_reset="earliest",
            max_records=settings.batch_max_records,
            batch_timeout_ms=settings.batch_timeout_ms,
            # The broker holds a fetch that finds nothing new for up to this long (Kafka's
            # default is 500 ms): at a trickle, that wait was most of an event's latency.
            fetch_max_wait_ms=settings.batch_timeout_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            ack_policy=AckPolicy.MANUAL,
            listener=self._tracker,
            decoder=no_decoding,
            parser=raw_headers,
            **consumer_options(settings.kafka),
            title="ingest: upstream events",
            description=(
                "Upstream JSON events, one topic per type. Each message yields exactly one "
                "canonical event, one DLQ record, or nothing for an exact duplicate."
            ),
        )
        self.subscriber(self.on_upstream_batch)
        self.watchdog = subscriber_watchdog(
            self.subscriber,
            service="ingest",
            consumer_name=f"ingest (group {settings.group_id})",
            gauges=gauges,
            stall_after_s=settings.stall_after,
        )
        self.policy = self.watchdog.batch_policy(settings.retry_max_s)

    async def on_upstream_batch(self, message: KafkaMessage) -> None:
        """Triage and publish a fetched batch, then commit its offsets."""
        batch = batch_records(message.raw_message)
        sources = [
            SourceRecord(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                expected_type=self._type_by_topic.get(r.topic),
                headers=r.headers,
            )
            for r in batch
        ]
        progress = Progress(batch)  # all or nothing: nothing is processed until it is published
        try:
            await self._pipeline.process(sources, source="kafka")
        except PublishError as exc:
            self._metrics.publish_failures.inc()
            await self.policy.failed(f"publish not acknowledged: {exc}", progress, self._seeker())
            return
        except Exception as exc:  # noqa: BLE001 - a bug: re-read the batch (stall loudly), never skip it
            # Unacknowledged, a failed batch would be committed past by the next one: lost.
            self._metrics.batch_errors.inc()
            await self.policy.failed(exc, progress, self._seeker())
            return
        self.policy.succeeded()
        try:
            await message.ack()
        except KafkaError as exc:
            self._metrics.commit_failures.inc()
            log.warning(
                "offset commit refused; the batch will be re-delivered",
                extra={"error": f"{type(exc).__name__}: {exc}", "records": len(batch)},
            )
        now_ms = time.time() * 1000
        observe_all(
            self._metrics.event_latency,
            [max(0.0, (now_ms - record.timestamp) / 1000) for record in batch],
        )

    def _seeker(self) -> Seeker | None:
        consumer: Seeker | None = self.subscriber.consumer
        return consumer

    async def readiness(self) -> CheckResult:
        """Ready once partitions were assigned, unless a partition is stalled."""
        consumer = self.subscriber.consumer
        if consumer is None or not self._tracker.assigned_once:
            return CheckResult(False, "joining the consumer group")
        if not consumer.assignment():
            return CheckResult(True, "no partitions assigned (idle group member)")
        return await self.watchdog.readiness()
