"""The canonical topic, folded: each assigned partition is replayed from its first record.

State is owned per partition. When the group assigns a partition, its state starts empty and
the partition is read from the beginning; the instance is ready once every owned partition has
been read up to the end offset it had at assignment. A partition kept across a rebalance keeps
its state and resumes where it was; a partition taken away is dropped. The state is always
rebuilt from the topic, so a restart gives the same numbers: offsets are committed (every few
seconds, by ``committer``) only so that the group's progress can be watched from outside
(the alerts service does, as do Kafka's own tools); they are never resumed from.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from itertools import groupby
from operator import attrgetter

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts.events import EventType
from services.common.batch_policy import Progress
from services.common.histograms import observe_all
from services.common.http import CheckResult
from services.common.kafka import batch_records, consumer_options, no_decoding, raw_headers
from services.common.log_ends import LogEnds
from services.common.periodic import Periodic
from services.common.watchdog import ConsumerGauges, check_interval, subscriber_watchdog
from services.metrics.canonical import NotAnEvent, held_of
from services.metrics.fold import Applied, BreakdownLabels, PartitionState, apply_record
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import RoadmapPlan
from services.metrics.settings import MetricsSettings

log = logging.getLogger(__name__)

AfterBatch = Callable[[], Awaitable[object]]
_partition = attrgetter("partition")


class CanonicalConsumer(ConsumerRebalanceListener):  # type: ignore[misc]
    """Owns ``states`` (partition -> state) and keeps them in step with the group's assignment."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: MetricsSettings,
        plan: RoadmapPlan,
        metrics: PipelineMetrics,
        gauges: ConsumerGauges,
        *,
        topic: str,
        after_batch: AfterBatch,
    ) -> None:
        self.states: dict[int, PartitionState] = {}
        self.partition_count = 0
        self._plan = plan
        self._labels = BreakdownLabels(
            corridor=(settings.corridor[0], settings.corridor[1]),
            commodities=frozenset(settings.commodities),
            sectors=frozenset(settings.sectors),
        )
        self._metrics = metrics
        self._topic = topic
        self._after_batch = after_batch
        self.committer = Periodic(
            "metrics offset commits", check_interval(settings.stall_after), self.commit_positions
        )
        self._positions: dict[int, int] = {}
        self._ends: LogEnds[int] = LogEnds(self._highwater)
        """Where each owned partition ended when it was assigned afresh (its replay's end)."""
        self._released: dict[int, PartitionState] = {}
        self.assigned_once = False
        self.subscriber = broker.subscriber(
            topic,
            batch=True,
            group_id=settings.group_id,
            auto_offset_reset="earliest",
            max_records=settings.batch_max_records,
            batch_timeout_ms=settings.batch_timeout_ms,
            fetch_max_wait_ms=settings.batch_timeout_ms,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            ack_policy=AckPolicy.MANUAL,
            listener=self,
            decoder=no_decoding,
            parser=raw_headers,
            **consumer_options(settings.kafka),
            title="metrics: canonical events",
            description="Folded into indicator state; each owned partition replayed from 0.",
        )
        self.subscriber(self.on_canonical_batch)
        self.watchdog = subscriber_watchdog(
            self.subscriber,
            service="metrics",
            consumer_name=f"metrics (group {settings.group_id})",
            gauges=gauges,
            stall_after_s=settings.stall_after,
        )
        self.policy = self.watchdog.batch_policy(settings.retry_max_s)

    # -- assignment ---------------------------------------------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Kept aside: if the next assignment gives a partition back, its state is reused.
        for tp in revoked:
            state = self.states.pop(tp.partition, None)
            if state is not None:
                self._released[tp.partition] = state
        self._update_gauges()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self.subscriber.consumer
        assert consumer is not None
        fresh = []
        for tp in assigned:
            kept = self._released.pop(tp.partition, None)
            if kept is not None:
                self.states[tp.partition] = kept
                consumer.seek(tp, self._positions.get(tp.partition, 0))
            else:
                self.states[tp.partition] = PartitionState(self._plan, self._labels)
                self._positions[tp.partition] = 0
                fresh.append(tp)
        for partition in self._released:
            self._positions.pop(partition, None)
            self._ends.forget(partition)
        self._released.clear()
        if fresh:
            self.watchdog.restart(fresh)  # read again from the start on purpose
            await consumer.seek_to_beginning(*fresh)
            ends = await consumer.end_offsets(fresh)
            for tp in fresh:
                self._ends.expect(tp.partition, ends[tp])
        self.partition_count = len(consumer.partitions_for_topic(self._topic) or ())
        self.assigned_once = True
        self._update_gauges()
        log.info(
            "partitions assigned",
            extra={
                "partitions": ",".join(str(tp.partition) for tp in sorted(assigned)),
                "replaying": ",".join(str(tp.partition) for tp in fresh),
            },
        )

    # -- folding ------------------------------------------------------------------------
    async def on_canonical_batch(self, message: KafkaMessage) -> None:
        """Decode and fold every record of the batch into its partition's state.

        On an unexpected error the records folded so far stay folded and counted; the batch
        policy rewinds each partition to its first unfolded record and reads it again."""
        records = batch_records(message.raw_message)
        started = time.perf_counter()
        progress = Progress(records)
        outcomes: list[tuple[EventType, Applied]] = []
        timestamps: list[int] = []
        try:
            self._fold(records, progress, outcomes, timestamps)
        except Exception as exc:  # noqa: BLE001 - a bug in the fold: stall loudly, skip nothing
            await self.policy.failed(exc, progress, self.subscriber.consumer)
            return
        else:
            self.policy.succeeded()
        finally:  # what was folded is counted, once, whatever happened after it
            now_ms = time.time() * 1000
            observe_all(
                self._metrics.event_latency,
                [max(0.0, (now_ms - ts) / 1000) for ts in timestamps],
            )
            for (kind, outcome), count in Tally(outcomes).items():
                self._metrics.events.labels(str(kind), str(outcome)).inc(count)
            self._metrics.fold_seconds.observe(time.perf_counter() - started)
            self._update_gauges()
        await self._after_batch()

    def _fold(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        progress: Progress,
        outcomes: list[tuple[EventType, Applied]],
        timestamps: list[int],
    ) -> None:
        # A fetched batch holds each partition's records together: look its state up once.
        for partition, run in groupby(records, key=_partition):
            state = self.states.get(partition)
            if state is None:
                continue  # revoked while this batch was in flight
            replayed_to = self._ends.target(partition)
            done = None  # the partition's last record processed, marked once per run
            try:
                for record in run:
                    try:
                        event_type, key, entity = held_of(record.value or b"")
                    except NotAnEvent:
                        self.policy.invalid(
                            "not a canonical event",
                            self._metrics.invalid,
                            partition=record.partition,
                            offset=record.offset,
                        )
                    else:
                        outcomes.append((event_type, apply_record(state, event_type, key, entity)))
                        if record.offset >= replayed_to:  # a replayed record's age is no latency
                            timestamps.append(record.timestamp)
                    done = record
            finally:
                if done is not None:
                    progress.processed(done)
                    self._positions[partition] = done.offset + 1

    async def commit_positions(self) -> None:
        """Commit, for the group's watchers (see the module docstring), the positions folded
        up to: never a record fetched but not yet folded.

        Run on a timer (``committer``), not after each batch: a commit per batch raised the
        peak memory of a replay from about 120 to about 210 MiB here, and commits made only
        after batches would leave the last records of a burst uncommitted, which a watcher
        takes for a stall.
        """
        consumer = self.subscriber.consumer
        if consumer is None:
            return
        assigned = consumer.assignment()
        folded = {
            tp: OffsetAndMetadata(self._positions[tp.partition], "")
            for tp in assigned
            if tp.partition in self._positions
        }
        if not folded:
            return
        try:
            await consumer.commit(folded)
        except KafkaError as exc:  # a rebalance; the next round commits again
            log.info("offset commit refused", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _update_gauges(self) -> None:
        self._metrics.partitions_owned.set(len(self.states))
        self._metrics.partitions_replaying.set(len(self.replaying()))

    # -- readiness ----------------------------------------------------------------------
    def replaying(self) -> list[int]:
        """Owned partitions not yet read up to where they ended when assigned (``LogEnds``)."""
        return [
            partition
            for partition in self.states
            if self._ends.left(partition, self._positions.get(partition, 0)) != 0
        ]

    def _highwater(self, partition: int) -> int | None:
        consumer = self.subscriber.consumer
        if consumer is None:
            return None
        try:
            return consumer.highwater(TopicPartition(self._topic, partition))  # type: ignore[no-any-return]
        except AssertionError:  # aiokafka: no longer assigned (a rebalance is under way)
            return None

    @property
    def caught_up(self) -> bool:
        return self.assigned_once and not self.replaying()

    async def readiness(self) -> CheckResult:
        if not self.assigned_once:
            return CheckResult(False, "joining the consumer group")
        behind = self.replaying()
        if behind:
            left = sum(self._ends.left(p, self._positions.get(p, 0)) or 0 for p in behind)
            return CheckResult(False, f"replaying partitions {behind}: {left} records to go")
        return CheckResult(True, f"{len(self.states)} partitions replayed and followed")
