"""Metrics replaying what Kafka's compaction would leave of a real run's canonical topic shows the
same scorecard as the metrics that folded the whole log.

Compaction is simulated here as Kafka does it (per partition, the record with the highest offset
for each key), so every version's fate can be followed; ``test_kafka_log_cleaner.py`` has Kafka's
own cleaner do it. A run of ingest and metrics folds a stream of shuffled versions and late
re-sends (``tests.support.versioned_run``). The compacted view of that canonical topic goes,
partition by partition, to a fresh topic, and a fresh metrics replays it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.events import event_adapter
from contracts.keys import entity_of
from contracts.topics import CANONICAL_EVENTS, TOPICS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import RealBroker, unique_name
from tests.support.processes import scrape
from tests.support.reference_fold import observed_series
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.versioned_run import fold_whole_log, versioned_stream


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
    stream = versioned_stream(EventFactory(run), random.Random(20261201))
    log, whole = await fold_whole_log(original, stream, run)

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
