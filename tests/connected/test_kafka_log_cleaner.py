"""Kafka's own log cleaner compacts the canonical topic of a real ingest run, and what it leaves
is enough: a fresh metrics replays it to the scorecard of the metrics that folded the whole log,
and the look-back (``read_last``) still hands back the last records of each partition, reaching
back over the holes the cleaner left.

The canonical topic is created with the product's own config (``cleanup.policy=compact``) plus
cleaner tuning so that the cleaner runs within seconds. What breaks it: if the cleaner never ran,
the "fewer records than offsets" wait fails; if canonical keys were the natural key alone (no
version), compaction would keep the stale versions that arrive last and the replayed scorecard
would differ; if ``read_last`` read ``count`` offsets instead of ``count`` records, the look-back
check fails.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import CANONICAL_EVENTS, TOPICS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.reading import read_last, state_reader
from services.common.topics import ensure_topics
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import RealBroker, read_topic, unique_name
from tests.support.processes import metric_total, scrape
from tests.support.reference_fold import observed_series
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.versioned_run import fold_whole_log, versioned_stream
from tests.support.waiting import until

CLEANER_TUNING = {
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
    "min.compaction.lag.ms": "0",
}
CLEANER_WAIT_S = 45.0
LOOK_BACK = 40

Records = list[ConsumerRecord[bytes, bytes]]


def _by_partition(records: Records) -> dict[int, Records]:
    out: dict[int, Records] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[record.partition].append(record)
    return out


async def _create_tuned(kafka: KafkaSettings, topic: str) -> None:
    # The canonical topic as the product creates it (its TopicSpec config), plus cleaner tuning.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        configs = {**CANONICAL_EVENTS.topic_config(), **CLEANER_TUNING}
        response = await admin.create_topics(
            [NewTopic(topic, kafka.topic_partitions, kafka.topic_replication_factor, None, configs)]
        )
        assert all(error[1] == 0 for error in response.topic_errors), response.topic_errors
    finally:
        await admin.close()


async def _offset_span(kafka: KafkaSettings, topic: str, partitions: int) -> int:
    consumer = state_reader(kafka, client_id="span")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def _until_cleaned(
    kafka: KafkaSettings, topic: str, refill: Records, written: int
) -> tuple[int, int, int]:
    """Keep re-sending each partition's newest record (same key and value: the scorecard does
    not move) so the active segment rolls, until the topic holds fewer records than its offsets
    span and fewer than were written (``written`` plus the re-sends: offsets alone could be
    spanned by markers). Returns (records held, offset span, records written)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    deadline = time.monotonic() + CLEANER_WAIT_S
    try:
        while True:
            for record in refill:
                await producer.send_and_wait(
                    topic, record.value, key=record.key, partition=record.partition
                )
                written += 1
            await asyncio.sleep(0.3)
            span = await _offset_span(kafka, topic, kafka.topic_partitions)
            held = len(await read_topic(kafka.bootstrap_servers, topic))
            if held < span and held < written:
                return held, span, written
            assert time.monotonic() < deadline, (
                f"Kafka's log cleaner did not compact {topic} within {CLEANER_WAIT_S:.0f} s: "
                f"{held} records of {written} written still fill an offset span of {span}"
            )
    finally:
        await producer.stop()


async def test_kafka_log_cleaner_leaves_what_metrics_and_look_back_need(
    broker: RealBroker,
) -> None:
    """Real compaction keeps each version's last record: replay gives the whole-log scorecard,
    and read_last hands back the last LOOK_BACK records of each partition over sparse offsets."""
    run = unique_name("cleaner")
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_partitions=3, topic_prefix=f"{run}."
    )
    topic = kafka.topic_name(CANONICAL_EVENTS)
    await _create_tuned(kafka, topic)
    await ensure_topics(kafka, TOPICS)  # the others; the canonical topic exists already
    stream = versioned_stream(EventFactory(run), random.Random(20261205))
    log, whole = await fold_whole_log(kafka, stream, run)

    started = time.monotonic()
    newest = [records[-1] for records in _by_partition(log).values()]
    held, span, written = await _until_cleaned(kafka, topic, newest, len(log))
    cleaned_in = time.monotonic() - started

    fresh = create_metrics(
        MetricsSettings(http_port=free_port(), kafka=kafka, group_id=f"{run}-replay", clock="event")
    )
    async with running_app(fresh) as fresh_url:
        await until(
            "the fresh metrics replayed the compacted topic",
            lambda: scrape(fresh_url),
            lambda t: metric_total(t, "roadmap_metrics_events_total") >= held,
        )
        compacted = observed_series([await scrape(fresh_url)])

    consumer = state_reader(kafka, client_id=f"{run}-look-back")
    await consumer.start()
    looked: dict[int, Records] = defaultdict(list)
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
        consumer.assign(tps)
        await read_last(
            consumer, tps, LOOK_BACK, lambda tp, rs: looked[tp.partition].extend(rs), what="test"
        )
    finally:
        await consumer.stop()
    full = _by_partition(await read_topic(kafka.bootstrap_servers, topic))

    print(
        f"\n{len(stream)} upstream messages, {len(log)} canonical records; the cleaner left "
        f"{held} of {written} records written over an offset span of {span} "
        f"after {cleaned_in:.1f} s; "
        f"{len(whole)} series compared"
    )
    assert compacted == whole
    for partition, records in full.items():
        want = [(r.offset, r.key, r.value) for r in records[-LOOK_BACK:]]
        got = sorted({(r.offset, r.key, r.value) for r in looked[partition]})
        assert got[-len(want) :] == want, f"read_last on partition {partition}"
        reached = records[-1].offset - want[0][0] + 1
        print(f"partition {partition}: last {len(want)} records span {reached} offsets")
    assert any(
        records[-1].offset - records[-LOOK_BACK].offset + 1 > LOOK_BACK
        for records in full.values()
        if len(records) >= LOOK_BACK
    ), "the look-back should reach back over holes in at least one partition"
