"""The ceiling every stage is compared with: a bare aiokafka consume-and-re-publish loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.process_stats import cpu_seconds
from contracts.topics import CANONICAL_EVENTS, UPSTREAM_TOPIC_BY_TYPE, TopicSpec
from services.common.config import KafkaSettings
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.topics import ensure_topics

FETCH_RECORDS = 1000


@dataclass
class StageResult:
    name: str
    events: int
    seconds: float
    events_per_s: float
    cpu_s: float | None = None
    broker_cpu_s: float | None = None
    peak_rss_mib: float | None = None


async def pass_through(
    kafka: KafkaSettings, count: int, *, batched: bool, broker_pid: int, group: str = "bench"
) -> StageResult:
    """Consume ``count`` records of the upstream topics and re-publish each value unchanged to a
    sink topic, committing per fetch: what any Kafka consumer-producer costs, with no work."""
    upstream = [kafka.topic_name(spec) for spec in UPSTREAM_TOPIC_BY_TYPE.values()]
    sink = await bench_topic(kafka, CANONICAL_EVENTS.name + (".batched" if batched else ".plain"))
    consumer = AIOKafkaConsumer(
        *upstream,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"{group}-pass-through-{'batched' if batched else 'plain'}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    publisher = BatchPublisher(kafka, service="bench-pass-through")
    await consumer.start()
    await producer.start()
    await publisher.start()
    done, first, last = 0, 0.0, 0.0
    cpu_at_first = broker_cpu_at_first = 0.0
    try:
        while done < count:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=FETCH_RECORDS)
            records = [record for batch in fetched.values() for record in batch]
            if not records:
                continue
            if not first:
                first = time.perf_counter()
                cpu_at_first, broker_cpu_at_first = time.process_time(), cpu_seconds(broker_pid)
            if batched:
                await publisher.publish([OutboundRecord(sink, r.key, r.value) for r in records])
            else:
                futures = [await producer.send(sink, r.value, key=r.key) for r in records]
                await asyncio.gather(*futures)
            await consumer.commit()
            done += len(records)
            last = time.perf_counter()
        cpu, broker_cpu = time.process_time() - cpu_at_first, cpu_seconds(broker_pid)
    finally:
        await publisher.stop()
        await producer.stop()
        await consumer.stop()
    name = "pass-through, batched send" if batched else "pass-through, send() per record"
    return StageResult(
        name,
        done,
        last - first,
        done / (last - first),
        cpu_s=round(cpu, 2),
        broker_cpu_s=round(broker_cpu - broker_cpu_at_first, 2),
    )


async def bench_topic(kafka: KafkaSettings, name: str) -> str:
    """Create the topic ``name`` (under the prefix, partitioned as the contract's topics) if it
    is missing; return its full name."""
    spec = TopicSpec(
        name=name, key="-", value=bytes, producer="bench", consumers=(), description="bench"
    )
    await ensure_topics(kafka, [spec])
    return kafka.topic_name(spec)
