"""Which real broker the ``connected``, fault and ``e2e`` tiers talk to.

``KAFKA_BOOTSTRAP_SERVERS`` if set (an external broker); else Apache Kafka, the version pinned
in ``deploy/kafka/pom.xml`` (the one production runs), started from its jars once per pytest
worker. The embedded broker (Tansu) keeps only the tests of what ``make dev`` runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from contracts.topics import TopicSpec
from services.common.apache_kafka import KafkaBroker, kafka_version
from services.common.config import KafkaSettings
from services.common.reading import topic_partitions


@dataclass(frozen=True, slots=True)
class RealBroker:
    bootstrap_servers: str
    kind: str  # "external", "kafka" or "embedded"
    data_dirs: tuple[Path, ...] = ()
    """Each node's log directory (``<topic>-<partition>/`` folders), when the test started it."""


def broker_description() -> str:
    """What the tiers run on, for their closing lines."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    return f"the broker at {external}" if external else f"Apache Kafka {kafka_version()}"


@contextlib.contextmanager
def real_broker(log_dir: Path) -> Iterator[RealBroker]:
    """Yield a running broker chosen as described in the module docstring; stop it afterwards."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield RealBroker(external, "external")
        return
    with KafkaBroker(log_path=log_dir / "kafka.log") as broker:
        yield RealBroker(
            broker.bootstrap_servers,
            "kafka",
            tuple(node.data_dir for node in broker.nodes),
        )


def scratch_topic(name: str) -> TopicSpec:
    """A TopicSpec for a test-only topic carrying raw bytes."""
    return TopicSpec(
        name=name,
        key="-",
        value=bytes,
        producer="test",
        consumers=("test",),
        description="test-only topic",
    )


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


async def read_topic(
    bootstrap_servers: str, topic: str, *, expect: int | None = None, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the beginning, partition by partition in offset order.

    With ``expect``, keep reading until at least that many records arrived (or ``timeout``);
    without it, read up to the end offsets seen at the start.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic, timeout)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if expect is None:
                positions = [await consumer.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                    break
            if expect is not None and len(records) >= expect:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for tp in partitions:
                records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


async def read_until_quiet(
    kafka: KafkaSettings,
    topics: Sequence[str],
    *,
    at_least: int = 0,
    quiet_s: float = 3.0,
    timeout: float = 120.0,
    max_fetch_bytes: int = 8 * 1024 * 1024,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topics`` (``kafka.topic_partitions`` partitions each) from the
    beginning: read until ``at_least`` arrived (or ``timeout``), then until nothing new came for
    ``quiet_s``, so extra records (repeats) are caught too. End offsets are not trusted: the
    embedded broker reports the start of the last batch. ``max_fetch_bytes`` per partition lets
    records of several MiB through."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=max_fetch_bytes,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(kafka.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        last_news = time.monotonic()
        while time.monotonic() < deadline and (
            len(records) < at_least or time.monotonic() - last_news < quiet_s
        ):
            batch = await consumer.getmany(timeout_ms=300)
            for tp_records in batch.values():
                records.extend(tp_records)
                last_news = time.monotonic()
        return records
    finally:
        await consumer.stop()


async def _partitions(
    consumer: AIOKafkaConsumer, topic: str, timeout: float
) -> list[TopicPartition]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await topic_partitions(consumer, topic)
        except KafkaError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topic {topic} has no partitions") from None
        await asyncio.sleep(0.1)
