"""librdkafka, through confluent-kafka: a Kafka client nobody here wrote, as upstream producers
and downstream consumers use it. Its calls block, so async tests run them in a thread."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka

Header = tuple[str, bytes | None]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce; ``partition`` None lets librdkafka's partitioner choose."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[Header] = ()
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = field(default=())


def produce(bootstrap_servers: str, records: Iterable[Outgoing], **config: Any) -> list[Delivered]:
    """Produce ``records`` in order with one librdkafka producer (``config`` on top of the
    bootstrap servers, e.g. ``compression.type`` or ``linger.ms``); return them as the broker
    acknowledged them, or raise on the first delivery error."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap_servers, **config})
    delivered: list[Delivered] = []
    errors: list[str] = []

    def report(error: Any, message: Any) -> None:
        if error is not None:
            errors.append(str(error))
            return
        delivered.append(
            Delivered(
                message.topic(),
                message.partition(),
                message.offset(),
                message.key(),
                message.value(),
                tuple(message.headers() or ()),
            )
        )

    for record in records:
        options: dict[str, Any] = {"key": record.key, "on_delivery": report}
        if record.headers:
            options["headers"] = list(record.headers)
        if record.partition is not None:
            options["partition"] = record.partition
        producer.produce(record.topic, record.value, **options)
        producer.poll(0)
    left = producer.flush(30)
    assert not errors, f"librdkafka delivery failed: {errors[:3]}"
    assert left == 0, f"{left} records still queued after 30 s"
    return delivered


def consume(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    *,
    at_least: int = 0,
    quiet_s: float = 2.0,
    timeout: float = 60.0,
) -> list[Any]:
    """Every message of ``topics`` (``partitions`` each) from the beginning, read by a
    librdkafka consumer assigned to them: until ``at_least`` arrived, then until nothing new
    came for ``quiet_s``. Each is a ``confluent_kafka.Message``."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"test-librdkafka-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign(
            [
                confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                for topic in topics
                for p in range(partitions)
            ]
        )
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        last_news = time.monotonic()
        while time.monotonic() < deadline and (
            len(messages) < at_least or time.monotonic() - last_news < quiet_s
        ):
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"librdkafka consumer error: {error}")
            messages.append(message)
            last_news = time.monotonic()
        return messages
    finally:
        consumer.close()
