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

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from contracts.topics import CANONICAL_EVENTS
from services.common.kafka import client_options
from services.common.reading import ReadTo, read_to_end
from services.ingest.dedup import DedupWindow, Remembered, remembered
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recalled:
    """What one recall read and kept."""

    records: int
    ids: int
    skipped: int
    seconds: float


async def recall_accepted_ids(settings: IngestSettings, window: DedupWindow) -> Recalled:
    """Read the tail of the canonical topic into ``window``; raises while Kafka is unreachable.

    Idempotent: ``window`` is replaced, not added to, so the runtime may simply call it again.
    """
    started = time.perf_counter()
    topic = settings.kafka.topic_name(CANONICAL_EVENTS)
    consumer = AIOKafkaConsumer(
        **{**client_options(settings.kafka), "client_id": f"{settings.kafka.client_id}-recall"},
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise KafkaError(f"topic {topic} has no partitions yet")
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        quota = math.ceil(window.capacity / len(partitions))
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(starts[tp], ends[tp] - quota))
        entries: list[Remembered] = []
        counts = {"records": 0, "skipped": 0}

        def keep(_: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            for record in records:
                counts["records"] += 1
                entry = remembered(
                    record.timestamp, record.partition, record.offset, record.value or b""
                )
                if entry is None:
                    counts["skipped"] += 1
                else:
                    entries.append(entry)

        await read_to_end(consumer, ReadTo(consumer, ends), keep, what=f"topic {topic}")
    finally:
        await consumer.stop()
    window.restore(entries)
    recalled = Recalled(
        counts["records"], len(window), counts["skipped"], time.perf_counter() - started
    )
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
