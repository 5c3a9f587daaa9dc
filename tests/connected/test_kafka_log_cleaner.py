"""Kafka's own log cleaner compacts the canonical topic of a real ingest run, and what it leaves
is enough: a fresh metrics replays it to the reference fold's scorecard (which is also that of
the metrics that folded the whole log), and every reader that looks back reads the right records
over the holes the cleaner left: ``read_last`` itself, a fresh ingest's dedup recall (re-sends of
the recalled events are dropped as duplicates, none is published again) and a fresh alerts
service's pipeline look-back (its DLQ share counts exactly the last records of each partition).

The canonical topic is created with the product's own config (``cleanup.policy=compact``) plus
cleaner tuning so that the cleaner runs within seconds. What breaks it: if the cleaner never ran,
the "fewer records than offsets" wait fails; if canonical keys were the natural key alone (no
version), compaction would keep the stale versions that arrive last and the replayed scorecard
would differ; if ``read_last`` read ``count`` offsets instead of ``count`` records, the look-back
checks fail: fewer records read, fewer ids recalled (re-sends published again), a DLQ share
taken over too few canonical records.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from pathlib import Path

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, TOPICS
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.reading import read_last, state_reader
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.alerts_stack import ROADMAP, write_alerts_file
from tests.support.kafka import RealBroker, read_topic, unique_name
from tests.support.processes import metric_total, scrape
from tests.support.reference_fold import differences, observed_series, reference_fold
from tests.support.services import running_app
from tests.support.streams import EventFactory, accepted
from tests.support.versioned_run import Stream, fold_whole_log, publish_upstream, versioned_stream
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


def _event_id(record: ConsumerRecord[bytes, bytes]) -> str:
    event_id: str = json.loads(record.value)["event_id"]
    return event_id


async def _recall_drops_the_re_sent_tail(
    kafka: KafkaSettings, run: str, stream: Stream, tail: Records
) -> dict[str, float]:
    """Ingest restarts (its group, committed at the upstream ends) with a dedup window of
    ``LOOK_BACK`` records a partition, recalled from the compacted topic's tail; the upstream
    messages of the tail's events, sent again, must all be dropped as exact duplicates."""
    by_id = {_event_id_of(value): (event_type, value) for event_type, value in stream}
    resent = [by_id[event_id] for event_id in sorted({_event_id(r) for r in tail})]
    ingest = create_ingest(
        IngestSettings(
            http_port=free_port(),
            kafka=kafka,
            group_id=f"{run}-ingest",
            dedup_window=LOOK_BACK * kafka.topic_partitions,
        )
    )
    async with running_app(ingest, timeout=90) as ingest_url:
        recalled = metric_total(await scrape(ingest_url), "roadmap_ingest_dedup_window_ids")
        await publish_upstream(kafka, resent)
        text = await until(
            "ingest took the re-sent tail",
            lambda: scrape(ingest_url),
            lambda t: metric_total(t, "roadmap_ingest_events_received_total") >= len(resent),
        )
        await asyncio.sleep(1)  # anything published again would be counted by now
        text = await scrape(ingest_url)
    return {
        "resent": len(resent),
        "recalled ids": recalled,
        "received": metric_total(text, "roadmap_ingest_events_received_total"),
        "duplicates": metric_total(text, "roadmap_ingest_events_duplicate_total"),
        "accepted": metric_total(text, "roadmap_ingest_events_accepted_total"),
    }


async def _alerts_dlq_share(kafka: KafkaSettings, run: str, tmp_path: Path, rejected: int) -> float:
    """Put ``rejected`` records on the DLQ, then start a fresh alerts service that looks back
    ``LOOK_BACK`` records a partition; its DLQ share once it has read the look-back."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for n in range(rejected):
            await producer.send_and_wait(
                kafka.topic_name(DEAD_LETTERS), b"{}", partition=n % kafka.topic_partitions
            )
    finally:
        await producer.stop()
    alerts = create_alerts(
        AlertsSettings(
            http_port=free_port(),
            kafka=kafka,
            delivery_group_id=f"{run}-delivery",
            watch_groups={},
            pipeline_lookback=LOOK_BACK,
            file=write_alerts_file(
                tmp_path / "alerts.yaml", receivers=[{"name": "console", "kind": "console"}]
            ),
        )
    )
    async with running_app(alerts, timeout=90) as alerts_url:
        text = await until(
            "alerts read its look-back",
            lambda: scrape(alerts_url),
            lambda t: metric_total(t, "roadmap_alerts_pipeline_dlq_ratio") > 0,
        )
    return metric_total(text, "roadmap_alerts_pipeline_dlq_ratio")


def _event_id_of(value: bytes) -> str:
    event_id: str = json.loads(value)["event_id"]
    return event_id


async def test_kafka_log_cleaner_leaves_what_metrics_and_look_back_need(
    broker: RealBroker, tmp_path: Path
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
    reference = reference_fold([accepted(t, raw, "versioned") for t, raw in stream], ROADMAP)
    assert differences(reference.series(), compacted) == []

    tail = [record for records in full.values() for record in records[-LOOK_BACK:]]
    recall = await _recall_drops_the_re_sent_tail(kafka, run, stream, tail)
    print(f"dedup recall over the compacted tail: {recall}")
    assert recall["recalled ids"] == len({_event_id(r) for r in tail})
    assert recall["received"] == recall["duplicates"] == recall["resent"]
    assert recall["accepted"] == 0, "a recalled event was published again"

    rejected = 2 * kafka.topic_partitions
    share = await _alerts_dlq_share(kafka, run, tmp_path, rejected)
    print(
        f"alerts' DLQ share over the look-back: {share:.4f} ({rejected} DLQ, {len(tail)} canonical)"
    )
    assert share == rejected / (rejected + len(tail))
    for partition, records in full.items():
        want = [(r.offset, r.key, r.value) for r in records[-LOOK_BACK:]]
        got = sorted({(r.offset, r.key, r.value) for r in looked[partition]})
        assert got == want, f"read_last on partition {partition}: exactly its last records"
        reached = records[-1].offset - want[0][0] + 1
        print(f"partition {partition}: last {len(want)} records span {reached} offsets")
    assert any(
        records[-1].offset - records[-LOOK_BACK].offset + 1 > LOOK_BACK
        for records in full.values()
        if len(records) >= LOOK_BACK
    ), "the look-back should reach back over holes in at least one partition"
