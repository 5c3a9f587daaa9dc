"""Whether the offsets between a group's committed offset and a partition's end hold anything to
read, for the group watch.

A transaction ends with a marker: a record at an offset of its own that no consumer is ever
handed. A consumer that commits what it processed (ingest commits after each batch) commits the
offset of the marker that ends the log, not the one after it, since no batch follows to commit.
Seen from the committed offsets alone, the partition then has one record waiting for ever, and
an aborted transaction at the end of the log leaves more. So before a group that has not moved
is called behind, one fetch from its committed offset (``read_committed``, as the services
read) tells whether a record is really there: if the fetch reaches the end without being handed
one, the gap holds only markers and aborted records and the group is caught up.

A verdict holds until the committed offset or the end moves, so a group stopped behind a real
backlog costs one fetch per change, not one per check.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.common.config import KafkaSettings
from services.common.progress import PartitionId
from services.common.reading import state_reader

PROBE_S = 1.0
"""How long one probe may fetch before the gap is taken as holding records (the safe side)."""


class GapProbe:
    def __init__(self, kafka: KafkaSettings, *, client_id: str) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._verdicts: dict[PartitionId, tuple[int, int, bool]] = {}

    async def start(self) -> None:
        if self._consumer is None:
            consumer = state_reader(self._kafka, client_id=self._client_id)
            await consumer.start()
            self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def nothing_to_read(self, tp: TopicPartition, start: int, end: int) -> bool:
        """Whether ``[start, end)`` of ``tp`` holds no record a consumer would be handed."""
        key = (tp.topic, tp.partition)
        known = self._verdicts.get(key)
        if known is not None and known[:2] == (start, end):
            return known[2]
        verdict = await self._fetch_finds_nothing(tp, start, end)
        self._verdicts[key] = (start, end, verdict)
        return verdict

    async def _fetch_finds_nothing(self, tp: TopicPartition, start: int, end: int) -> bool:
        consumer = self._consumer
        if consumer is None or start >= end:
            return start >= end
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = asyncio.get_running_loop().time() + PROBE_S
        try:
            while asyncio.get_running_loop().time() < deadline:
                handed = await consumer.getmany(tp, timeout_ms=200, max_records=1)
                if handed.get(tp):
                    return False
                if await consumer.position(tp) >= end:
                    return True
            return False
        finally:
            consumer.assign([])
