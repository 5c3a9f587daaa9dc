"""A real ingest and metrics folding a stream of shuffled versions and late re-sends: what the
compaction tests (simulated and by Kafka's log cleaner) start from.

Every entity's versions arrive in a random order (stale versions after newer ones), and a fifth
of the events is sent again after ingest's small dedup window forgot them, so they are published
twice on the canonical topic.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts.events import EventType
from contracts.topics import CANONICAL_EVENTS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import read_until_quiet
from tests.support.processes import metric_total, scrape
from tests.support.reference_fold import observed_series
from tests.support.services import running_app
from tests.support.streams import EventFactory
from tests.support.waiting import until

ENTITIES = 60
VERSIONS = 4
WINDOW = 20
BASE = datetime(2026, 5, 1, tzinfo=UTC)

Stream = list[tuple[EventType, bytes]]


def versioned_stream(factory: EventFactory, rng: random.Random) -> Stream:
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


async def publish_upstream(kafka: KafkaSettings, stream: Stream) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for event_type, value in stream:
            topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type])
            await producer.send_and_wait(topic, value, partition=0)  # one order for all
    finally:
        await producer.stop()


async def fold_whole_log(
    kafka: KafkaSettings, stream: Stream, run: str
) -> tuple[list[ConsumerRecord[bytes, bytes]], dict[str, float]]:
    """Publish ``stream`` upstream, run ingest (dedup window ``WINDOW``) and metrics over it
    in-process; return the canonical log and the scorecard of the metrics that folded it all."""
    await publish_upstream(kafka, stream)
    ingest = create_ingest(
        IngestSettings(
            http_port=free_port(),
            kafka=kafka,
            group_id=f"{run}-ingest",
            dedup_window=WINDOW,
            batch_max_records=50,  # a batch remembers its own ids whatever the window
        )
    )
    metrics = create_metrics(
        MetricsSettings(
            http_port=free_port(), kafka=kafka, group_id=f"{run}-metrics", clock="event"
        )
    )
    async with running_app(ingest, timeout=90) as ingest_url, running_app(metrics) as metrics_url:
        await until(
            "ingest took every upstream message",
            lambda: scrape(ingest_url),
            lambda t: metric_total(t, "roadmap_ingest_events_received_total") >= len(stream),
        )
        log = await read_until_quiet(kafka, [kafka.topic_name(CANONICAL_EVENTS)], quiet_s=2)
        await until(
            "metrics folded the whole log",
            lambda: scrape(metrics_url),
            lambda t: metric_total(t, "roadmap_metrics_events_total") >= len(log),
        )
        return log, observed_series([await scrape(metrics_url)])
