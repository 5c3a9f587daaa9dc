"""Clients nobody here wrote, on both sides of the product.

Upstream: librdkafka producers (confluent-kafka) with every codec Kafka defines, none, gzip,
snappy, lz4 and zstd, batching with ``linger.ms``, with and without keys, with text and null
headers, send valid and invalid events to the three upstream topics, while an aiokafka producer
sends its own events in between; one more aiokafka producer sends a header key that is not
UTF-8 (a Go or C client can; no Python client can without help). Every valid event must be
canonical exactly once, and every invalid one on the DLQ once, with the reason worked out here.

Downstream: a librdkafka consumer reads the canonical, DLQ, KPI and alerts topics and finds in
each what the contracts promise.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.codec import Accepted, RejectReason, decode_event
from contracts.events import EventType
from contracts.keys import canonical_key
from contracts.records import DLQ_HEADER_REASON, AlertTransition, DlqRecord, KpiSnapshot
from contracts.topics import (
    ALERT_TRANSITIONS,
    CANONICAL_EVENTS,
    DEAD_LETTERS,
    KPI_SNAPSHOTS,
    TOPICS,
    UPSTREAM_TOPIC_BY_TYPE,
)
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.kafka import RealBroker, read_until_quiet, unique_name
from tests.support.librdkafka import Delivered, Outgoing, consume, produce
from tests.support.services import CLI, REPO, running_app
from tests.support.streams import EventFactory

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
SHIP, MILE, HIRE = EventType.TRADE_SHIPMENT, EventType.PROJECT_MILESTONE, EventType.HIRING_REPORT
TEXT_HEADERS = (("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)
NULL_HEADER = (("x-tenant", None),)
NOT_UTF8_KEY_PRODUCER = """
import asyncio, sys
from aiokafka import AIOKafkaProducer

class NotUtf8(str):
    def encode(self, *args, **kwargs):  # written as these bytes by aiokafka's Python builder
        return b"\\xff\\xfeid"

async def main() -> None:
    producer = AIOKafkaProducer(bootstrap_servers=sys.argv[1])
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            sys.argv[2], sys.stdin.buffer.read(), headers=[(NotUtf8("x"), b"v")]
        )
        print(meta.partition, meta.offset)
    finally:
        await producer.stop()

asyncio.run(main())
"""


@dataclass(frozen=True, slots=True)
class Expected:
    """What one produced record must become: a canonical event (reason None) or a DLQ record."""

    event_id: str | None
    reason: RejectReason | None


def _topic(kafka: KafkaSettings, event_type: EventType) -> str:
    return kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type])


def _upstream_batch(
    kafka: KafkaSettings, factory: EventFactory, codec: str, first: int
) -> Iterator[tuple[Outgoing, Expected]]:
    """Twelve valid events of the three types (keyed or not, some with headers) and one of
    each kind of invalid record real producers send, a value over 64 KiB among them."""
    for n in range(12):
        event_type = (SHIP, MILE, HIRE)[n % 3]
        body = factory.body(event_type, first + n, 1)
        headers = TEXT_HEADERS if n % 4 == 0 else NULL_HEADER if n % 4 == 1 else ()
        key = f"{codec}-{n}".encode() if n % 2 == 0 else None
        record = Outgoing(_topic(kafka, event_type), json.dumps(body).encode(), key, headers)
        yield record, Expected(body["event_id"], None)
    shipments = _topic(kafka, SHIP)
    negative = factory.body(SHIP, first + 100, 1)
    negative["data"]["tonnes"] = -1
    invalid = [
        (Outgoing(shipments, json.dumps(negative).encode(), b"neg"), RejectReason.SCHEMA),
        (Outgoing(shipments, b"{not json", None), RejectReason.NOT_JSON),
        (Outgoing(shipments, b"[" + b" " * (64 * 1024) + b"]", b"huge"), RejectReason.TOO_LARGE),
        (Outgoing(shipments, None, b"deleted-shipment"), RejectReason.TOMBSTONE),
        (
            Outgoing(
                shipments,
                json.dumps(factory.body(SHIP, first + 101, 1)).encode(),
                None,
                (("schema-id", b"\x00\x00\x01\xf4"),),
            ),
            RejectReason.HEADERS_NOT_UTF8,
        ),
        (
            Outgoing(
                shipments,
                json.dumps(factory.body(SHIP, first + 102, 1)).encode(),
                b"big",
                (("baggage", b"k=v;" * 4_500),),
            ),
            RejectReason.HEADERS_TOO_LARGE,
        ),
        (
            Outgoing(shipments, json.dumps(factory.body(HIRE, first + 103, 1)).encode()),
            RejectReason.TYPE_MISMATCH,
        ),
    ]
    for record, reason in invalid:
        yield record, Expected(None, reason)


@pytest.fixture
async def stack(broker: RealBroker) -> AsyncIterator[KafkaSettings]:
    """Ingest, metrics and alerts in this process, on topics of their own."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topic_partitions=3,
        topic_prefix=unique_name("clients") + ".",
    )
    await ensure_topics(kafka, TOPICS)
    group = unique_name("clients")
    apps = [
        create_ingest(
            IngestSettings(http_port=free_port(), kafka=kafka, group_id=f"{group}-ingest")
        ),
        create_metrics(
            MetricsSettings(http_port=free_port(), kafka=kafka, group_id=f"{group}-metrics")
        ),
        create_alerts(
            AlertsSettings(
                http_port=free_port(),
                kafka=kafka,
                delivery_group_id=f"{group}-delivery",
                watch_groups={"ingest": f"{group}-ingest", "metrics": f"{group}-metrics"},
            )
        ),
    ]
    async with AsyncExitStack() as running:
        for app in apps:
            await running.enter_async_context(running_app(app, timeout=90))
        yield kafka


async def _aiokafka_events(
    kafka: KafkaSettings, factory: EventFactory, first: int, count: int
) -> list[tuple[Delivered, Expected]]:
    """Valid events from aiokafka, uncompressed, one request each (between librdkafka's)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    sent = []
    try:
        for n in range(count):
            event_type = (SHIP, MILE, HIRE)[n % 3]
            body = factory.body(event_type, first + n, 1)
            value = json.dumps(body).encode()
            topic = _topic(kafka, event_type)
            meta = await producer.send_and_wait(topic, value, key=b"aiokafka")
            delivered = Delivered(topic, meta.partition, meta.offset, b"aiokafka", value)
            sent.append((delivered, Expected(body["event_id"], None)))
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return sent


def _not_utf8_header_key(kafka: KafkaSettings, factory: EventFactory) -> tuple[Delivered, Expected]:
    """A valid event whose one header key is the bytes ff fe 69 64: refused for its header."""
    topic = _topic(kafka, SHIP)
    value = json.dumps(factory.body(SHIP, 900, 1)).encode()
    done = subprocess.run(
        [sys.executable, "-c", NOT_UTF8_KEY_PRODUCER, kafka.bootstrap_servers, topic],
        input=value,
        capture_output=True,
        env={"AIOKAFKA_NO_EXTENSIONS": "1", "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    )
    partition, offset = (int(x) for x in done.stdout.split())
    return Delivered(topic, partition, offset, None, value), Expected(
        None, RejectReason.HEADERS_NOT_UTF8
    )


async def test_librdkafka_producers_with_every_codec_and_aiokafka_interleaved(
    stack: KafkaSettings,
) -> None:
    kafka = stack
    factory = EventFactory(unique_name("rdk"))
    plan = {
        codec: list(_upstream_batch(kafka, factory, codec, 1_000 * i))
        for i, codec in enumerate(CODECS)
    }

    async def librdkafka(codec: str) -> list[tuple[Delivered, Expected]]:
        records = [record for record, _ in plan[codec]]
        config = {"compression.type": codec, "linger.ms": 50, "batch.num.messages": 50}
        delivered = await asyncio.to_thread(produce, kafka.bootstrap_servers, records, **config)
        by_value = {(d.topic, d.value, d.key): d for d in delivered}
        return [(by_value[(r.topic, r.value, r.key)], e) for r, e in plan[codec]]

    results = await asyncio.gather(
        *(librdkafka(codec) for codec in CODECS),
        _aiokafka_events(kafka, factory, 50_000, 30),
        asyncio.to_thread(lambda: [_not_utf8_header_key(kafka, factory)]),
    )
    sent = [pair for result in results for pair in result]
    where = {(d.topic, d.partition, d.offset): e for d, e in sent}
    assert len(where) == len(sent)
    valid = Counter(e.event_id for _, e in sent if e.reason is None)
    refused = Counter(e.reason for _, e in sent if e.reason is not None)

    outputs = await read_until_quiet(
        kafka,
        [kafka.topic_name(CANONICAL_EVENTS), kafka.topic_name(DEAD_LETTERS)],
        at_least=len(sent),
        quiet_s=2.0,
        timeout=120,
    )
    canonical = [r for r in outputs if r.topic == kafka.topic_name(CANONICAL_EVENTS)]
    dlq = [r for r in outputs if r.topic == kafka.topic_name(DEAD_LETTERS)]
    assert Counter(json.loads(r.value)["event_id"] for r in canonical) == valid
    found: Counter[RejectReason] = Counter()
    for record in dlq:
        letter = DlqRecord.model_validate_json(record.value)
        assert letter.source_partition is not None
        assert letter.source_offset is not None
        source = (letter.source_topic, letter.source_partition, letter.source_offset)
        expected = where.pop(source)  # each invalid record once
        assert letter.reason is expected.reason, (letter.detail, source)
        found[letter.reason] += 1
    assert found == refused
    assert refused[RejectReason.TOMBSTONE] == len(CODECS)
    assert refused[RejectReason.HEADERS_NOT_UTF8] == len(CODECS) + 1
    print(
        f"\n{len(sent)} records from 5 librdkafka producers ({', '.join(CODECS)}), aiokafka and "
        f"a not-UTF-8 header key: {len(canonical)} canonical = {len(valid)} valid, {len(dlq)} "
        f"on the DLQ by reason {dict(sorted((r.value, n) for r, n in found.items()))}"
    )


async def test_a_librdkafka_consumer_reads_every_output_topic(stack: KafkaSettings) -> None:
    """Canonical events, DLQ records, KPI snapshots and alert records, as another team's
    librdkafka consumer sees them: values that validate against the contracts, canonical keys
    that are natural keys, the DLQ's reason header, and the original bytes in the DLQ record."""
    kafka = stack
    factory = EventFactory(unique_name("down"))
    events = [factory.body((SHIP, MILE, HIRE)[n % 3], n, 1) for n in range(9)]
    garbage = b"\xff not an event"
    records = [
        Outgoing(_topic(kafka, EventType(e["type"])), json.dumps(e).encode()) for e in events
    ] + [Outgoing(_topic(kafka, SHIP), garbage, b"garbage")]
    await asyncio.to_thread(produce, kafka.bootstrap_servers, records, **{"linger.ms": 20})

    def read(spec: Any, at_least: int) -> list[Any]:
        return consume(kafka.bootstrap_servers, [kafka.topic_name(spec)], 3, at_least=at_least)

    canonical = await asyncio.to_thread(read, CANONICAL_EVENTS, len(events))
    assert sorted(json.loads(m.value())["event_id"] for m in canonical) == sorted(
        e["event_id"] for e in events
    )
    for message in canonical:
        decoded = decode_event(message.value())
        assert isinstance(decoded, Accepted)
        assert message.key() == canonical_key(decoded.event)

    (letter,) = await asyncio.to_thread(read, DEAD_LETTERS, 1)
    record = DlqRecord.model_validate_json(letter.value())
    assert record.reason is RejectReason.NOT_UTF8
    assert base64.b64decode(record.original_base64) == garbage
    assert dict(letter.headers())[DLQ_HEADER_REASON] == b"not_utf8"
    assert letter.key() == b"garbage"

    snapshots = await asyncio.to_thread(read, KPI_SNAPSHOTS, 7)
    indicators = {KpiSnapshot.model_validate_json(m.value()).indicator for m in snapshots}
    assert len(indicators) == 7

    # With the wall clock, indicators without data since the roadmap began are stale at once.
    alerts = await asyncio.to_thread(read, ALERT_TRANSITIONS, 1)
    transitions = [AlertTransition.model_validate_json(m.value()) for m in alerts]
    assert {t.alertname.value for t in transitions} >= {"RoadmapIndicatorStale"}
    print(
        f"\nlibrdkafka read {len(canonical)} canonical, 1 DLQ, {len(snapshots)} KPI and "
        f"{len(alerts)} alert records"
    )


@pytest.mark.parametrize("service", ["ingest", "metrics", "alerts"])
def test_a_service_without_the_codec_library_refuses_to_start_naming_the_codecs(
    service: str, tmp_path: Path
) -> None:
    """With cramjam hidden from the process (a package of that name that fails to import comes
    first on its path), ``roadmap-monitor run`` exits 2 before it listens or connects, naming
    snappy, lz4 and zstd; gzip needs no library and is not named."""
    hidden = tmp_path / "cramjam"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    port = free_port()
    done = subprocess.run(
        [str(CLI), "run", service],
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
            f"{service.upper()}_HTTP_PORT": str(port),
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith(
        f"roadmap-monitor run {service}: cannot read Kafka batches compressed with snappy, lz4, "
        "zstd (snappy: its library is not installed;"
    ), done.stderr
    assert "gzip" not in done.stderr
    assert "service started" not in done.stderr
