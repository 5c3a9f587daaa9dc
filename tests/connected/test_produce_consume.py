"""Producing and consuming through a real broker with the shared Kafka plumbing."""

from __future__ import annotations

import asyncio
import dataclasses

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from contracts.codec import Accepted, decode_event
from contracts.examples import valid_examples
from contracts.keys import message_key
from contracts.topics import TOPICS
from services.common.config import KafkaSettings
from services.common.kafka import client_options, consumer_options, make_broker
from services.common.reading import topic_partitions
from services.common.topics import ensure_topics
from tests.support.kafka import scratch_topic, unique_name


async def _committed(settings: KafkaSettings, topic: str, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        group_id=group, enable_auto_commit=False, **client_options(settings)
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        return {tp.partition: await consumer.committed(tp) for tp in partitions}
    finally:
        await consumer.stop()


async def test_ensure_topics_creates_with_configured_partitions_once(
    kafka_settings: KafkaSettings,
) -> None:
    """Topics are created with KAFKA_TOPIC_PARTITIONS partitions; a second call creates nothing."""
    name = unique_name("roadmap.test.topics")
    assert await ensure_topics(kafka_settings, [scratch_topic(name)]) == [name]
    assert await ensure_topics(kafka_settings, [scratch_topic(name)]) == []
    producer = AIOKafkaProducer(**client_options(kafka_settings))
    await producer.start()
    try:
        assert await producer.partitions_for(name) == {0, 1, 2}
    finally:
        await producer.stop()


async def _topic_configs(settings: KafkaSettings, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _code, _message, _kind, name, entries in (r[:5] for r in response.resources):
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def test_ensure_topics_gives_each_registry_topic_its_configuration(
    kafka_settings: KafkaSettings,
) -> None:
    """Each contracts topic is created with its compaction or retention, as the broker reports
    it back (the same settings the compose initialiser uses)."""
    prefix = unique_name("cfg")
    specs = [dataclasses.replace(spec, name=f"{prefix}.{spec.name}") for spec in TOPICS]
    await ensure_topics(kafka_settings, specs)
    configs = await _topic_configs(kafka_settings, [spec.name for spec in specs])
    for spec in specs:
        wanted = spec.topic_config()
        assert wanted, spec.name
        assert {key: configs[spec.name].get(key) for key in wanted} == wanted, spec.name


async def test_group_consumes_every_event_and_commits_its_offsets(
    kafka_settings: KafkaSettings,
) -> None:
    """Every contract example published through the shared broker is consumed once by a group,
    decoded exactly, and the group's committed offsets cover all of them; a restarted member of
    the group resumes after them and sees only new messages."""
    topic, group = unique_name("roadmap.test.events"), unique_name("roadmap-test-group")
    await ensure_topics(kafka_settings, [scratch_topic(topic)])
    examples = valid_examples()
    received: list[tuple[bytes | None, bytes]] = []
    done = asyncio.Event()

    def build_consumer() -> object:
        broker = make_broker(kafka_settings, service="test-consumer")

        @broker.subscriber(
            topic,
            group_id=group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.ACK,
            **consumer_options(kafka_settings),
        )
        async def collect(message: KafkaMessage) -> None:
            record = message.raw_message
            assert not isinstance(record, tuple)
            received.append((record.key, message.body))
            if len(received) >= expected_count:
                done.set()

        return broker

    producer = make_broker(kafka_settings, service="test-producer")
    await producer.start()
    try:
        for example in examples:
            result = decode_event(example.raw)
            assert isinstance(result, Accepted)
            await producer.publish(example.raw, topic, key=message_key(result.event))

        expected_count = len(examples)
        consumer = build_consumer()
        await consumer.start()  # type: ignore[attr-defined]
        await asyncio.wait_for(done.wait(), timeout=30)
        await consumer.stop()  # type: ignore[attr-defined]

        assert sorted(body for _, body in received) == sorted(e.raw for e in examples)
        for key, body in received:
            decoded = decode_event(body)
            assert isinstance(decoded, Accepted)
            assert key == message_key(decoded.event)
        committed = await _committed(kafka_settings, topic, group)
        assert sum(offset or 0 for offset in committed.values()) == len(examples)

        late = examples[0].raw
        await producer.publish(late, topic, key=b"late")
        received.clear()
        done.clear()
        expected_count = 1
        consumer = build_consumer()
        await consumer.start()  # type: ignore[attr-defined]
        await asyncio.wait_for(done.wait(), timeout=30)
        await asyncio.sleep(1.0)  # anything re-delivered would arrive in this window
        await consumer.stop()  # type: ignore[attr-defined]
        assert received == [(b"late", late)]
    finally:
        await producer.stop()
