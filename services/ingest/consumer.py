"""The Kafka side of ingest: one batch subscriber over the three upstream topics.

Acknowledgement is manual and deliberate (FastStream's default would auto-commit, i.e. at most
once): a batch's offsets are committed only after every outcome was acknowledged by the broker.
If the publish fails, each partition is rewound to the batch's first record and read again
after a back-off; a refused commit (a rebalance) means re-delivery, never loss. A progress
watchdog reports a partition that has records to read and does not move (``INGEST_STALL_AFTER``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.backoff import Attempts, Backoff
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
        self._republish = Attempts(Backoff(initial_s=0.5, max_s=settings.retry_max_s))
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
        try:
            await self._pipeline.process(sources, source="kafka")
        except PublishError as exc:
            self._metrics.publish_failures.inc()
            await self._retry_later(message, f"publish not acknowledged: {exc}")
            return
        except Exception as exc:  # a bug: re-read the batch (and stall, loudly), never skip it
            # Unacknowledged, a failed batch would be committed past by the next one: lost.
            log.exception("batch not processed; re-reading it", extra={"records": len(batch)})
            self._metrics.batch_errors.inc()
            await self._retry_later(message, f"batch not processed: {type(exc).__name__}: {exc}")
            return
        self._republish.reset()
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

    async def _retry_later(self, message: KafkaMessage, error: str) -> None:
        self.watchdog.note_error(error)
        delay = self._republish.next_wait()
        log.warning("batch to be re-read", extra={"error": error, "retry_in_s": round(delay, 3)})
        await message.nack()  # rewinds every partition of the batch to its first record
        await asyncio.sleep(delay)

    async def readiness(self) -> CheckResult:
        """Ready once partitions were assigned, unless a partition is stalled."""
        consumer = self.subscriber.consumer
        if consumer is None or not self._tracker.assigned_once:
            return CheckResult(False, "joining the consumer group")
        if not consumer.assignment():
            return CheckResult(True, "no partitions assigned (idle group member)")
        return await self.watchdog.readiness()
