"""Reading assigned partitions up to where they ended when reading began: for state recovery.

Used where a service rebuilds state from a topic before it starts work (alerts: its alert book;
ingest: its dedup window). Reading gives up with ``TimeoutError`` when no record arrives for a
while, so the service's runtime can retry it (or stop, if it was told to).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence, Set
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from services.common import fetch_guard
from services.common.config import KafkaSettings
from services.common.kafka import client_options, consumer_options
from services.common.log_ends import LogEnds
from services.common.lookback import LookBack

FETCH_WAIT_MS = 500
RECOVERY_STALL_S = 30.0

RecordSink = Callable[[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]], None]


class ClusterMetadata(Protocol):
    def partitions_for_topic(self, topic: str) -> Set[int] | None: ...


class MetadataClient(Protocol):
    async def fetch_all_metadata(self) -> ClusterMetadata: ...


class StateReader(Protocol):
    """What the services call on a ``state_reader``: an ``AIOKafkaConsumer`` on Kafka, the
    ``service`` test tier's ``InMemoryConsumer`` in memory.

    Assigned partitions, positioned by the caller and fetched from; ``_client`` only for
    ``topic_partitions``' metadata, ``last_stable_offset`` for the progress watchdog."""

    @property
    def _client(self) -> MetadataClient: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def assignment(self) -> Set[TopicPartition]: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    async def position(self, tp: TopicPartition) -> int: ...

    def highwater(self, tp: TopicPartition) -> int | None: ...

    def last_stable_offset(self, tp: TopicPartition) -> int | None: ...

    async def beginning_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...

    async def end_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]: ...


def state_reader(kafka: KafkaSettings, *, client_id: str) -> AIOKafkaConsumer:
    """A consumer outside any group, for partitions the caller assigns and positions itself.

    Built like every consumer of the product (``consumer_options``).
    """
    return AIOKafkaConsumer(
        **{**client_options(kafka), "client_id": client_id},
        **consumer_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


StateReaders = Callable[[str], StateReader]
"""Builds a ``state_reader`` for a client id: the services take one so that the ``service``
test tier can hand them an in-memory consumer."""


def state_readers(kafka: KafkaSettings) -> StateReaders:
    """``state_reader`` on ``kafka``, for each client id asked."""
    return lambda client_id: state_reader(kafka, client_id=client_id)


def offset_reader(kafka: KafkaSettings, *, group: str, client_id: str) -> AIOKafkaConsumer:
    """A consumer with ``group``'s id that only reads the group's committed offsets: it never
    subscribes, so it never joins the group and cannot disturb its members."""
    return AIOKafkaConsumer(
        **{**client_options(kafka), "client_id": client_id},
        **consumer_options(kafka),
        group_id=group,
        enable_auto_commit=False,
    )


async def topic_partitions(consumer: StateReader, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic``, from fresh metadata; ``KafkaError`` while it has none.

    ``consumer.topics()`` fetches every topic's metadata but keeps it from the consumer's own,
    which covers only the topics it tracks: on Apache Kafka none before the first ``assign``
    (the embedded broker answered the consumer's empty topic list with every topic). So the
    partitions are read from the fetched metadata itself.
    """
    cluster = await consumer._client.fetch_all_metadata()  # no public call gives it
    found = cluster.partitions_for_topic(topic)
    if not found:
        raise KafkaError(f"topic {topic} has no partitions yet")
    return [TopicPartition(topic, p) for p in sorted(found)]


class ReadTo:
    """Whether partitions have been read up to where they ended when reading began
    (``LogEnds``: the end offsets asked for, raised by the high-water marks fetches report)."""

    def __init__(
        self, consumer: StateReader, ends: dict[TopicPartition, int], *, exact: bool = False
    ) -> None:
        """``exact``: the targets are offsets to stop at, not end offsets to confirm."""
        self._consumer = consumer
        self._ends: LogEnds[TopicPartition] = LogEnds(consumer.highwater)
        for tp, end in ends.items():
            self._ends.expect(tp, end, exact=exact)
        self._partitions = list(ends)

    async def remaining(self) -> int | None:
        """Records left to read; None while some partition's true end is not known yet."""
        left = 0
        for tp in self._partitions:
            part = self._ends.left(tp, await self._consumer.position(tp))
            if part is None:
                return None
            left += part
        return left


async def read_to_end(
    consumer: StateReader,
    read_to: ReadTo,
    sink: RecordSink,
    *,
    what: str,
    stall_s: float = RECOVERY_STALL_S,
) -> None:
    """Hand every fetched record to ``sink`` until ``read_to`` says nothing is left.

    The consumer must already be assigned and positioned. Raises ``TimeoutError`` naming
    ``what`` when ``stall_s`` pass without a record while some are still unread.
    """
    loop = asyncio.get_running_loop()
    stalled_since = loop.time()
    while True:
        left = await read_to.remaining()
        if left == 0:
            return
        if loop.time() - stalled_since > stall_s:
            count = "some" if left is None else str(left)
            undecodable = [
                f"partition {tp.partition} at offset {found.offset}: {found.error}"
                for tp in consumer.assignment()
                if (found := fetch_guard.UNREADABLE.get(tp)) is not None
            ]
            why = f" ({'; '.join(undecodable)})" if undecodable else ""
            raise TimeoutError(f"{what} unreadable: {count} records left, no progress{why}")
        batches = await consumer.getmany(timeout_ms=FETCH_WAIT_MS)
        if batches:
            stalled_since = loop.time()
        for tp, records in batches.items():
            sink(tp, records)


async def read_last(
    consumer: StateReader,
    partitions: Sequence[TopicPartition],
    count: int,
    sink: RecordSink,
    *,
    what: str,
) -> dict[TopicPartition, int]:
    """Hand ``sink`` the last ``count`` records of each assigned partition (all of them when it
    has fewer), and any written since the end offsets were asked for, reaching further back
    where offsets are sparse (``LookBack``: a compacted topic). Leaves each partition at, and
    returns, the offset it was read up to, to follow it from.

    A range read further back can hold more records than are still missing; only its newest
    ones are handed over. Handing the whole range once made ingest's dedup recall keep older
    records in place of another partition's last ones, and the alerts service's DLQ share count
    two and a half times its look-back of canonical records (Kafka's log cleaner showed both).
    """
    starts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    plan: LookBack[TopicPartition] = LookBack(count, starts, ends)
    for tp in partitions:
        span = plan.next.get(tp)
        consumer.seek(tp, span.lower if span is not None else ends[tp])

    def newest(tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        plan.read(tp, (r.offset for r in records))
        sink(tp, records)

    # The first round reads to the true end (past what the end-offset request answered).
    first = {tp: ends[tp] for tp in plan.next}
    await read_to_end(consumer, ReadTo(consumer, first), newest, what=what)
    reached = {tp: await consumer.position(tp) for tp in partitions}
    latest: dict[TopicPartition, deque[ConsumerRecord[bytes, bytes]]] = {}
    while spans := plan.advance():
        # Further back on the partitions that need it, the others held where they are.
        waiting = [tp for tp in partitions if tp not in spans]
        fetch_guard.hold(consumer, waiting)
        for tp, span in spans.items():
            consumer.seek(tp, span.lower)
        latest.clear()  # per partition, the newest records still missing
        latest.update({tp: deque(maxlen=max(0, plan.want - plan.found[tp])) for tp in spans})

        def earlier(tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            inside = [r for r in records if r.offset < spans[tp].upper]
            plan.read(tp, (r.offset for r in inside))
            latest[tp].extend(inside)  # in offset order: the deque keeps the newest

        targets = {tp: span.upper for tp, span in spans.items()}
        await read_to_end(consumer, ReadTo(consumer, targets, exact=True), earlier, what=what)
        for tp, kept in latest.items():
            if kept:
                sink(tp, list(kept))
        fetch_guard.release(consumer, waiting)
    for tp, offset in reached.items():
        consumer.seek(tp, offset)
    return reached
