"""Kafka in memory for the ``service`` tier: the services' own handlers, no broker.

FastStream's ``TestKafkaBroker`` carries what the services receive through their FastStream
subscribers (ingest's upstream topics, metrics' canonical topic, alerts delivery). What they
send or read with raw aiokafka clients goes through the fakes here instead:

- ``InMemoryPublisher`` stands in for ``BatchPublisher``: it appends to an ``InMemoryKafka``
  log, choosing partitions as Kafka's default partitioner does, and can be told to fail;
- ``InMemoryConsumer`` stands in for a ``state_reader`` (the alerts evaluator, ingest's
  recall): assigned partitions, positions, end offsets and fetches over that log.

``running_in_memory(app)`` runs a ``ServiceApp``'s start-up and shut-down hooks around
``TestKafkaBroker``, as ``serve`` does around the real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker, TestKafkaBroker

from services.common.partitioning import partition_for_key
from services.common.publishing import OutboundRecord, PublishError
from services.common.reading import StateReaders
from services.common.runtime import ServiceApp

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass
class InMemoryKafka:
    """Topics as lists of records per partition; offsets are list positions."""

    partitions: int = 3
    logs: dict[str, list[list[Record]]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def log(self, topic: str) -> list[list[Record]]:
        return self.logs.setdefault(topic, [[] for _ in range(self.partitions)])

    def append(self, record: OutboundRecord, *, partition: int | None = None) -> Record:
        by = record.partition_key if record.partition_key is not None else record.key
        if partition is None:
            partition = 0 if by is None else partition_for_key(by, self.partitions)
        log = self.log(record.topic)[partition]
        stored: Record = ConsumerRecord(
            record.topic,
            partition,
            len(log),
            int(time.time() * 1000),
            0,
            record.key,
            record.value,
            None,
            len(record.key or b""),
            len(record.value),
            tuple(record.headers),
        )
        log.append(stored)
        self.arrived.set()
        return stored

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic``, partition by partition in offset order."""
        return [r for partition in self.log(topic) for r in partition]

    def readers(self) -> StateReaders:
        """What a service takes for its ``state_reader``s: consumers of this log."""
        return lambda _client_id: InMemoryConsumer(self)


@dataclass
class InMemoryPublisher:
    """``BatchPublisher`` over an ``InMemoryKafka``: all of a publish is stored, or none of it.

    ``failures`` publishes in a row raise ``PublishError`` and store nothing, as a broker that
    acknowledged nothing would."""

    kafka: InMemoryKafka
    failures: int = 0
    _started: bool = False

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        if not records:
            return
        if not self._started:
            raise PublishError("the producer is not started")
        if self.failures:
            self.failures -= 1
            raise PublishError("publish failed: KafkaTimeoutError: (injected)")
        for record in records:
            self.kafka.append(record)


class InMemoryConsumer:
    """A ``StateReader`` (the part of ``AIOKafkaConsumer`` a ``state_reader``'s users call) over
    ``InMemoryKafka``."""

    def __init__(self, kafka: InMemoryKafka) -> None:
        self._kafka = kafka
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def commit(self) -> None:
        """Offsets are not kept: nothing here resumes from them (metrics replays from 0)."""

    @property
    def _client(self) -> InMemoryConsumer:
        """aiokafka's client, whose ``fetch_all_metadata`` gives the cluster's topics: here the
        consumer answers for both."""
        return self

    async def fetch_all_metadata(self) -> InMemoryConsumer:
        return self

    async def topics(self) -> set[str]:
        return set(self._kafka.logs)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self._kafka.partitions)) if topic in self._kafka.logs else None

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        self._positions = {tp: self._positions.get(tp, 0) for tp in partitions}
        self._paused &= set(partitions)

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def _end(self, tp: TopicPartition) -> int:
        return len(self._kafka.log(tp.topic)[tp.partition])

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._positions[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def highwater(self, tp: TopicPartition) -> int:
        return self._end(tp)

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        """Unknown, as with ``read_uncommitted``: there are no transactions here."""
        return None

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._end(tp) for tp in partitions}

    async def beginning_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self._paused.difference_update(partitions)

    async def getmany(
        self, *_: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        fetched = self._take(max_records)
        if not fetched and timeout_ms:
            self._kafka.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kafka.arrived.wait(), timeout_ms / 1000)
            fetched = self._take(max_records)
        return fetched

    def _take(self, max_records: int | None) -> dict[TopicPartition, list[Record]]:
        fetched: dict[TopicPartition, list[Record]] = {}
        room = max_records if max_records is not None else 10**9
        for tp, position in self._positions.items():
            if tp in self._paused or room <= 0:
                continue
            records = self._kafka.log(tp.topic)[tp.partition][position : position + room]
            if records:
                fetched[tp] = records
                self._positions[tp] = position + len(records)
                room -= len(records)
        return fetched


def subscriber_of(broker: Any, topic: str) -> Any:
    """The service's subscriber of ``topic`` (``TestKafkaBroker`` adds subscribers of its own,
    for the topics the service publishes to)."""
    found = [s for s in broker.subscribers if topic in s.topic_names]
    assert len(found) == 1, f"{len(found)} subscribers of {topic}"
    return found[0]


async def assign(
    subscriber: Any, consumer: InMemoryConsumer, partitions: list[TopicPartition]
) -> None:
    """Give a FastStream group subscriber ``partitions`` as a group join would: the subscriber
    reads through ``consumer``, and its rebalance listener hears of the assignment."""
    consumer.assign(partitions)
    subscriber.consumer = consumer
    listener = subscriber._listener  # the listener= it was built with
    if listener is not None:
        await listener.on_partitions_assigned(partitions)


async def deliver(subscriber: Any, consumer: InMemoryConsumer, *, max_records: int = 500) -> int:
    """Fetch from ``consumer`` and hand each partition's batch to ``subscriber`` the way
    ``TestKafkaBroker`` hands a published batch (FastStream's parser, decoder, middlewares and
    the handler), but with the records' real partitions and offsets; until nothing is left.
    Returns how many records were delivered."""
    delivered = 0
    while fetched := await consumer.getmany(max_records=max_records):
        for records in fetched.values():
            await subscriber.process_message(list(records))
            delivered += len(records)
    return delivered


@contextlib.asynccontextmanager
async def running_in_memory(app: ServiceApp) -> AsyncIterator[KafkaBroker]:
    """``app`` started on FastStream's in-memory broker, hooks run as ``serve`` runs them."""
    async with TestKafkaBroker(app.broker) as broker:
        for hook in app.connect:
            await hook()
        for hook in app.after_start:
            await hook()
        try:
            yield broker
        finally:
            for hook in app.before_stop:
                await hook()
            for hook in app.disconnect:
                await hook()
