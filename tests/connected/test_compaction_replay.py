"""Metrics replaying what Kafka's compaction would leave of a real run's canonical topic shows the
same scorecard as the metrics that folded the whole log.

The embedded broker never compacts, so compaction is simulated as Kafka does it: per partition,
the record with the highest offset for each key. A run of ingest and metrics folds a stream in
which every entity's versions arrive in a random order (stale versions after newer ones) and
some events are sent again after ingest's (small) dedup window forgot them, so they are
published twice. The compacted view of that canonical topic goes, partition by partition, to a
fresh topic, and a fresh metrics replays it.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.events import EventType, event_adapter
from contracts.keys import entity_of
from contracts.topics import CANONICAL_EVENTS, TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import RealBroker, read_until_quiet, unique_name
from tests.support.processes import metric_total, scrape
from tests.support.reference_fold import observed_series
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.waiting import until

ENTITIES = 60
VERSIONS = 4
WINDOW = 20
BASE = datetime(2026, 5, 1, tzinfo=UTC)


def _stream(factory: EventFactory, rng: random.Random) -> list[tuple[EventType, bytes]]:
    """Four versions of each entity (one minute apart), arriving in a random order; a fifth of
    the events sent again at the end, far outside a dedup window of 20."""
    lanes = []
    for event_type in EventType:
        for entity in range(ENTITIES):
            versions = []
            for version in range(1, VERSIONS + 1):
                body: dict[str, Any] = factory.body(event_type, entity, version)
                body["occurred_at"] = (BASE + timedelta(minutes=version)).isoformat()
                versions.append((event_type, json.dumps(body).encode()))
            rng.shuffle(versions)
            lanes.append(versions)
    arrivals = [event for lane in lanes for event in lane]
    rng.shuffle(arrivals)
    return arrivals + rng.sample(arrivals, len(arrivals) // 5)


async def _publish_upstream(kafka: KafkaSettings, stream: list[tuple[EventType, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for event_type, value in stream:
            topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type])
            await producer.send_and_wait(topic, value, partition=0)  # one order for all
    finally:
        await producer.stop()


async def _scorecard(base_url: str) -> dict[str, float]:
    return observed_series([await scrape(base_url)])


async def test_metrics_on_the_compacted_canonical_topic_shows_the_same_scorecard(
    broker: RealBroker,
) -> None:
    run = unique_name("compact")
    original = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_partitions=3, topic_prefix=f"{run}.a."
    )
    replayed = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_partitions=3, topic_prefix=f"{run}.b."
    )
    for kafka in (original, replayed):
        await ensure_topics(kafka, TOPICS)
    stream = _stream(EventFactory(run), random.Random(20261201))
    await _publish_upstream(original, stream)

    ingest = create_ingest(
        IngestSettings(
            http_port=free_port(),
            kafka=original,
            group_id=f"{run}-ingest",
            dedup_window=WINDOW,
            batch_max_records=50,  # a batch remembers its own ids whatever the window
        )
    )
    metrics = create_metrics(
        MetricsSettings(
            http_port=free_port(), kafka=original, group_id=f"{run}-metrics", clock="event"
        )
    )
    async with running_app(ingest, timeout=90) as ingest_url, running_app(metrics) as metrics_url:
        await until(
            "ingest took every upstream message",
            lambda: scrape(ingest_url),
            lambda t: metric_total(t, "roadmap_ingest_events_received_total") >= len(stream),
        )
        log = await read_until_quiet(original, [original.topic_name(CANONICAL_EVENTS)], quiet_s=2)
        await until(
            "metrics folded the whole log",
            lambda: scrape(metrics_url),
            lambda t: metric_total(t, "roadmap_metrics_events_total") >= len(log),
        )
        whole = await _scorecard(metrics_url)

    last: dict[tuple[int, bytes], int] = {}
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in log:
        by_partition[record.partition].append(record)
    for partition, records in by_partition.items():
        records.sort(key=lambda r: r.offset)
        for record in records:
            last[(partition, record.key)] = record.offset
    survivors = sorted(
        (r for r in log if last[(r.partition, r.key)] == r.offset),
        key=lambda r: (r.partition, r.offset),
    )
    republished = len(log) - len(survivors)
    # The hazard the version in the key removes: how many entities' last record by offset is
    # not their winning version (what compaction by the natural key alone would keep).
    winners: dict[bytes, tuple[datetime, str]] = {}
    final: dict[bytes, tuple[datetime, str]] = {}
    for record in sorted(log, key=lambda r: (r.partition, r.offset)):
        event = event_adapter.validate_json(record.value)
        version = (event.occurred_at, event.event_id)
        entity = entity_of(record.key)
        winners[entity] = max(winners.get(entity, version), version)
        final[entity] = version
    stale_last = sum(1 for entity, version in final.items() if version != winners[entity])
    assert republished > 0, "the stream should make ingest publish some versions twice"
    assert stale_last > 0, "the stream should leave some entity's newest record stale"

    producer = AIOKafkaProducer(bootstrap_servers=replayed.bootstrap_servers)
    await producer.start()
    try:
        topic = replayed.topic_name(CANONICAL_EVENTS)
        for record in survivors:
            await producer.send_and_wait(
                topic, record.value, key=record.key, partition=record.partition
            )
    finally:
        await producer.stop()
    fresh = create_metrics(
        MetricsSettings(
            http_port=free_port(), kafka=replayed, group_id=f"{run}-replay", clock="event"
        )
    )
    async with running_app(fresh) as fresh_url:
        compacted = await _scorecard(fresh_url)
    print(
        f"\n{len(stream)} upstream messages, {len(log)} canonical records, {len(survivors)} "
        f"after compaction ({republished} versions published twice dropped); {stale_last} "
        f"entities whose newest record is a stale version; {len(whole)} series compared"
    )
    assert compacted == whole
