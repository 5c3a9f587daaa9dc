"""How the alerts service learns that ingest or metrics has stalled, without calling them.

As Burrow and kminion do, it compares each watched consumer group's committed offsets with the
end offsets of the topics that group reads (the registry in ``contracts.topics`` says which). A
partition whose committed offset stays below its end for ``ALERTS_STALL_AFTER`` is stalled:
the group has records to read and commits no progress, whether its service is stuck on an
unreadable batch, hung, crashed or not running at all. Committed offsets only move back on a
deliberate new start (metrics replays a partition it was given; an operator resets the group),
so a move back restarts the clock. A partition the group never committed counts from the
partition's first offset. A group that has not moved is called behind only if the gap holds a
record to read: the marker that ends a transaction occupies an offset no consumer is handed
(``gap_probe``).

For each group, one consumer with that group's id reads the committed offsets. It never
subscribes, so it never joins the group and cannot disturb its members.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.topics import TOPICS
from services.alerts.gap_probe import GapProbe
from services.common.config import KafkaSettings
from services.common.periodic import Periodic
from services.common.progress import (
    EMPTY_REPORT,
    PartitionId,
    ProgressReport,
    ProgressTracker,
    Reading,
    Stall,
    describe,
)
from services.common.reading import offset_reader, topic_partitions
from services.common.watchdog import check_interval

log = logging.getLogger(__name__)

OFFSETS_TIMEOUT_S = 5.0
SEEN_FROM_OUTSIDE = (
    "seen from the group's committed offsets; the service's /readyz and log give the cause"
)


def consumed_topics(service: str) -> list[str]:
    """The registry's topics that ``service`` reads in its consumer group."""
    return [spec.name for spec in TOPICS if service in spec.consumers]


@dataclass
class _Watched:
    service: str
    group: str
    topics: list[str]
    tracker: ProgressTracker
    consumer: AIOKafkaConsumer | None = None
    report: ProgressReport = field(default=EMPTY_REPORT)
    committed: dict[PartitionId, int] = field(default_factory=dict)
    """The offsets read at the last check, to tell a group that has not moved."""

    @property
    def name(self) -> str:
        return f"{self.service} (group {self.group})"


class GroupWatch:
    """Watches the committed progress of other services' consumer groups."""

    def __init__(
        self,
        kafka: KafkaSettings,
        groups: Mapping[str, str],
        *,
        stall_after_s: float,
        interval_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kafka = kafka
        self._watched = [
            _Watched(
                service,
                group,
                [kafka.topic_prefix + name for name in consumed_topics(service)],
                ProgressTracker(stall_after_s, rewind_is_restart=True),
            )
            for service, group in groups.items()
        ]
        self._monotonic = monotonic
        self._gaps = GapProbe(kafka, client_id=f"{kafka.client_id}-alerts-watch-gaps")
        self._timer = Periodic(
            "alerts group watch",
            interval_s if interval_s is not None else check_interval(stall_after_s),
            self.check,
        )

    @property
    def groups(self) -> list[str]:
        return [watched.group for watched in self._watched]

    async def connect(self) -> None:
        """Start one offset reader per group; retried by the runtime until Kafka answers."""
        for watched in self._watched:
            if watched.consumer is not None:
                continue
            consumer = offset_reader(
                self._kafka,
                group=watched.group,
                client_id=f"{self._kafka.client_id}-alerts-watch-{watched.service}",
            )
            await consumer.start()
            watched.consumer = consumer
        if self._watched:
            await self._gaps.start()

    async def check(self) -> None:
        """Read every watched group's committed and end offsets once."""
        for watched in self._watched:
            if watched.consumer is None:
                continue
            try:
                readings = await asyncio.wait_for(
                    self._readings(watched, watched.consumer), OFFSETS_TIMEOUT_S
                )
            except (KafkaError, TimeoutError, OSError) as exc:
                log.debug(
                    "group offsets not read", extra={"group": watched.group, "error": str(exc)}
                )
                # unknown this time: the partitions are kept, and so are their clocks
                readings = {(p.topic, p.partition): None for p in watched.report.partitions}
            watched.report = watched.tracker.observe(self._monotonic(), readings)
            self._log(watched)

    async def _readings(
        self, watched: _Watched, consumer: AIOKafkaConsumer
    ) -> dict[PartitionId, Reading | None]:
        partitions: list[TopicPartition] = []
        for topic in watched.topics:
            partitions += await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        never = [tp for tp, offset in committed.items() if offset is None]
        firsts = await consumer.beginning_offsets(never) if never else {}
        offsets = {
            (tp.topic, tp.partition): offset if offset is not None else firsts[tp]
            for tp, offset in committed.items()
        }
        readings: dict[PartitionId, Reading | None] = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            offset, end = offsets[key], ends[tp]
            unmoved = watched.committed.get(key) == offset
            if offset < end and unmoved and await self._gaps.nothing_to_read(tp, offset, end):
                offset = end  # only transaction markers or aborted records are left
            readings[key] = Reading(offset, end)
        watched.committed = offsets
        return readings

    def _log(self, watched: _Watched) -> None:
        for progress in watched.report.began:
            log.error(
                "consumer group stalled: %s: %s",
                watched.name,
                describe(progress),
                extra={
                    "group": watched.group,
                    "topic": progress.topic,
                    "partition": progress.partition,
                },
            )
        for topic, partition in watched.report.ended:
            log.info(
                "consumer group moving again: %s: %s partition %s",
                watched.name,
                topic,
                partition,
                extra={"group": watched.group},
            )

    def stalls(self) -> list[Stall]:
        """The partitions stalled at the last check, over every watched group."""
        return [
            Stall(watched.name, progress, SEEN_FROM_OUTSIDE)
            for watched in self._watched
            for progress in watched.report.stalled
        ]

    async def start(self) -> None:
        if self._watched:
            await self._timer.start()

    async def stop(self) -> None:
        await self._timer.stop()
        await self._gaps.stop()
        for watched in self._watched:
            consumer, watched.consumer = watched.consumer, None
            if consumer is not None:
                await consumer.stop()
