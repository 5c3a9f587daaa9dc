"""Refill the dedup window at start-up from the canonical topic: what ingest itself published.

Without it a restarted ingest would forget every id it accepted: an upstream re-delivery, or
the batch it published but had not committed when it stopped, would be published again, and an
``event_id`` reused with other content would be taken for a correction. Each partition's last
``ceil(window / partitions)`` records are read (natural keys spread events evenly over the
partitions), so the window holds about the last ``INGEST_DEDUP_WINDOW`` accepted ids again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord, TopicPartition

from contracts.topics import CANONICAL_EVENTS
from services.common.config import KafkaSettings
from services.common.http import CheckResult
from services.common.reading import StateReaders, read_last, state_readers, topic_partitions
from services.ingest.dedup import DedupWindow, Remembered, remembered
from services.ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recalled:
    """What one recall read and kept."""

    records: int
    ids: int
    skipped: int
    seconds: float


class DedupRecall:
    """Refills ``window`` once per process, as a start-up hook, and says how far it got."""

    def __init__(
        self,
        kafka: KafkaSettings,
        window: DedupWindow,
        metrics: IngestMetrics,
        *,
        enabled: bool,
        readers: StateReaders | None = None,
    ) -> None:
        self._kafka = kafka
        self._readers = readers or state_readers(kafka)
        self._window = window
        self._metrics = metrics
        self.enabled = enabled and window.capacity > 0
        self.done: Recalled | None = None

    async def connect(self) -> None:
        """Recall unless it is off or already done (the runtime retries start-up as a whole)."""
        if self.enabled and self.done is None:
            self.done = await recall_accepted_ids(self._kafka, self._window, self._readers)
            self._metrics.dedup_ids.set(len(self._window))

    async def readiness(self) -> CheckResult:
        if not self.enabled:
            return CheckResult(True, "not recalled (off)")
        if self.done is None:
            return CheckResult(False, "recalling accepted ids from the canonical topic")
        return CheckResult(True, f"{self.done.ids} ids recalled")


async def recall_accepted_ids(
    kafka: KafkaSettings, window: DedupWindow, readers: StateReaders
) -> Recalled:
    """Read the tail of the canonical topic into ``window``; raises while Kafka is unreachable.

    ``window`` is replaced, not added to, and only once the whole tail was read.
    """
    started = time.perf_counter()
    topic = kafka.topic_name(CANONICAL_EVENTS)
    consumer = readers(f"{kafka.client_id}-recall")
    await consumer.start()
    read = 0
    entries: list[Remembered] = []
    try:
        partitions = await topic_partitions(consumer, topic)
        quota = math.ceil(window.capacity / len(partitions))
        consumer.assign(partitions)

        def keep(_: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            nonlocal read
            read += len(records)
            for record in records:
                entry = remembered(
                    record.timestamp, record.partition, record.offset, record.value or b""
                )
                if entry is not None:
                    entries.append(entry)

        await read_last(consumer, partitions, quota, keep, what=f"topic {topic}")
    finally:
        await consumer.stop()
    window.restore(entries)
    recalled = Recalled(read, len(window), read - len(entries), time.perf_counter() - started)
    log.info(
        "dedup window recalled from the canonical topic",
        extra={
            "records": recalled.records,
            "ids": recalled.ids,
            "skipped": recalled.skipped,
            "seconds": round(recalled.seconds, 2),
        },
    )
    return recalled
