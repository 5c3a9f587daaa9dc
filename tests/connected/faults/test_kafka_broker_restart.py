"""Idempotent publishing across a broker restart: no duplicate, no reordering within a key.

Apache Kafka (its own node, not the worker's shared one) is SIGKILLed mid-stream and started
again on the same data 3 s later. Ingest and metrics run as real processes with the idempotent
producer (``KAFKA_ENABLE_IDEMPOTENCE=true``, ``acks=all``); the test's upstream producer is
idempotent too, so what reaches the upstream topic is each event once and in order. Ingest's
re-publication after the restart must then leave every event once on the canonical topic, each
shipment's versions in the order they were published, and metrics must fold every one.
Without idempotence a batch the broker stored but never acknowledged is sent again: a second
canonical copy (ingest's dedup does not see its own retries) or, with more than one request in
flight, a later version ahead of an earlier one.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from contracts.events import EventType
from contracts.topics import CANONICAL_EVENTS, TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.common.apache_kafka import KafkaBroker
from services.common.config import KafkaSettings
from services.common.topics import ensure_topics
from tests.support.fault_report import FaultReport
from tests.support.kafka import read_until_quiet
from tests.support.processes import folded_events, metric_total, running_services, scrape
from tests.support.roadmap_events import shipment
from tests.support.services import wait_ready

SHIPMENTS = 40
VERSIONS = 25
DOWN_S = 3.0


async def test_a_broker_restart_mid_stream_duplicates_and_reorders_nothing(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    run = f"restart{uuid.uuid4().hex[:6]}"
    with KafkaBroker(log_path=tmp_path / "kafka.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")
        assert kafka.enable_idempotence
        await ensure_topics(kafka, TOPICS)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # Version v of every shipment, then v + 1 of every one: each key's versions are spread
        # over the whole stream, so the restart falls between versions of every key.
        stream = [
            shipment(
                f"{run}-s{s}-v{v}",
                f"{run}-s{s}",
                occurred=start + timedelta(minutes=v),
                route=("KZ", "BY"),
                mode="road",
                commodity="flour",
                tonnes=str(10 + v),
                shipped_on=date(2026, 1, 1),
            )
            for v in range(VERSIONS)
            for s in range(SHIPMENTS)
        ]
        topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[EventType.TRADE_SHIPMENT])
        with running_services(kafka, tmp_path, run, names=("ingest", "metrics")) as services:
            for service in services.values():
                await wait_ready(service.base_url, timeout=120)
            producer = AIOKafkaProducer(
                bootstrap_servers=kafka.bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=60_000,
            )
            await producer.start()
            try:
                half = len(stream) // 2
                sent = [await producer.send(topic, m.value, key=m.key) for m in stream[:half]]
                await asyncio.sleep(0.5)  # ingest is re-publishing the first half
                killed_at = time.monotonic()
                await asyncio.to_thread(broker.kill_node, 1, signal.SIGKILL)

                async def send_the_rest() -> list[asyncio.Future[RecordMetadata]]:
                    # send() waits while the broker is down and the buffer full
                    return [await producer.send(topic, m.value, key=m.key) for m in stream[half:]]

                rest = asyncio.create_task(send_the_rest())
                await asyncio.sleep(DOWN_S)
                await asyncio.to_thread(broker.restart_node, 1)
                back_s = time.monotonic() - killed_at
                sent += await rest
                await asyncio.gather(*sent)
            finally:
                await producer.stop()
            fault_report.injected(
                f"{len(stream)} events ({SHIPMENTS} shipments x {VERSIONS} versions) through "
                f"ingest and metrics; Apache Kafka SIGKILLed after {half} were sent and "
                f"answering again {back_s:.1f} s later"
            )
            canonical = await read_until_quiet(
                kafka, [kafka.topic_name(CANONICAL_EVENTS)], at_least=len(stream), timeout=120
            )
            folded = await folded_events(services["metrics"].base_url, len(stream))
            ingest_text = await scrape(services["ingest"].base_url)

    copies = Counter(json.loads(r.value)["event_id"] for r in canonical)
    assert set(copies) == {m.event_id for m in stream}
    twice = {event_id: n for event_id, n in copies.items() if n > 1}
    assert twice == {}, f"canonical more than once: {twice}"
    versions: defaultdict[str, list[str]] = defaultdict(list)
    for record in sorted(canonical, key=lambda r: (r.partition, r.offset)):
        body = json.loads(record.value)
        versions[body["data"]["shipment_id"]].append(body["occurred_at"])
    out_of_order = {key: seen for key, seen in versions.items() if seen != sorted(seen)}
    assert out_of_order == {}, f"versions reordered within a key: {list(out_of_order)[:3]}"
    assert folded == len(stream)
    duplicates = metric_total(ingest_text, "roadmap_ingest_events_total", outcome="duplicate")
    fault_report.checked(
        f"canonical: {len(canonical)} records, each of the {len(stream)} events once; every "
        f"shipment's {VERSIONS} versions in published order; metrics folded {folded:.0f}; "
        f"ingest counted {duplicates:.0f} duplicates"
    )
