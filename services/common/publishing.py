"""Publish many records per request, in order, and return only once the broker has them all.

One round trip per event would cap throughput at the broker's latency; here records are packed
into one batch per partition (aiokafka's ``create_batch``/``send_batch``) and every batch's
acknowledgement is awaited. Records with the same key go to the same partition, in the order
given, because a partition has at most one request in flight.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from services.common.config import KafkaSettings
from services.common.kafka import client_options
from services.common.outbound import OutboundRecord
from services.common.partitioning import partition_for_key

__all__ = [  # OutboundRecord lives in the pure services.common.outbound; re-exported here
    "BATCH_BYTES",
    "MAX_REQUEST_BYTES",
    "BatchPublisher",
    "OutboundRecord",
    "PublishError",
    "RecordPublisher",
]

BATCH_BYTES = 256 * 1024
"""Target size of one record batch; below every broker's default message size limit."""
MAX_REQUEST_BYTES = 1024 * 1024


class PublishError(RuntimeError):
    """At least one record was not acknowledged; some of the others may have been."""


class RecordPublisher(Protocol):
    """What the services publish through: ``BatchPublisher`` on Kafka; an in-memory one in the
    ``service`` test tier."""

    @property
    def started(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        """Return once every record is stored; raise ``PublishError`` otherwise."""
        ...


class BatchPublisher:
    """An aiokafka producer (acks=all) that publishes sequences of records as batches."""

    def __init__(self, settings: KafkaSettings, *, service: str) -> None:
        self._settings = settings
        self._client_id = f"{settings.client_id}-{service}-publisher"
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._round_robin = itertools.count()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect the producer; a no-op when it is already started."""
        if self._producer is not None:
            return
        options = {**client_options(self._settings), "client_id": self._client_id}
        producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=self._settings.enable_idempotence,
            max_batch_size=BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            linger_ms=0,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        """Send ``records`` and wait until the broker acknowledged every one.

        Raises ``PublishError`` if any was not acknowledged; the caller decides whether to retry
        (which may duplicate records that did get through, never lose them).
        """
        if not records:
            return
        producer = self._producer
        if producer is None:
            raise PublishError("the producer is not started")
        try:
            batches = await self._pack(producer, records)
            futures = [
                await producer.send_batch(batch, topic, partition=partition)
                for topic, partition, batch in batches
            ]
            await asyncio.gather(*futures)
        except Exception as exc:
            self._partitions.clear()  # metadata may be what changed
            raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc

    async def _pack(
        self, producer: AIOKafkaProducer, records: Sequence[OutboundRecord]
    ) -> list[tuple[str, int, Any]]:
        sealed: list[tuple[str, int, Any]] = []
        open_batches: dict[tuple[str, int], Any] = {}
        for topic in {record.topic for record in records} - self._partitions.keys():
            self._partitions[topic] = sorted(await producer.partitions_for(topic))
        for record in records:
            partition = self._partition_for(record)
            slot = (record.topic, partition)
            batch = open_batches.get(slot)
            if batch is None:
                batch = open_batches[slot] = producer.create_batch()
            if _append(batch, record) is None:
                # Full: seal it (in order) and start the next batch for this partition.
                sealed.append((record.topic, partition, batch))
                batch = open_batches[slot] = producer.create_batch()
                if _append(batch, record) is None:
                    raise PublishError(
                        f"a {len(record.value)}-byte record does not fit in one batch"
                    )
        sealed.extend(
            (topic, partition, batch) for (topic, partition), batch in open_batches.items()
        )
        return sealed

    def _partition_for(self, record: OutboundRecord) -> int:
        partitions = self._partitions[record.topic]
        by = record.partition_key if record.partition_key is not None else record.key
        if by is None:
            return partitions[next(self._round_robin) % len(partitions)]
        return partitions[partition_for_key(by, len(partitions))]


def _append(batch: Any, record: OutboundRecord) -> Any:
    return batch.append(
        key=record.key, value=record.value, timestamp=None, headers=list(record.headers)
    )
