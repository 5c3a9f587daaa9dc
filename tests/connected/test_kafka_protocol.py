"""Kafka 4's protocol: every request the product sends is one Apache Kafka 4.4.0 accepts.

Kafka 4 removed old protocol versions (Metadata, Produce and Fetch below v4, JoinGroup v0 in
4.0.0 only, ...), and aiokafka's support of Kafka 4 is an open question upstream
(aio-libs/aiokafka#1085). Here the three services run as real processes on Apache Kafka behind
a ``TcpProxy`` that counts every request frame by API key and version. They create their
topics, take events over HTTP and over Kafka, fold them, publish KPI snapshots and evaluate
them, and ingest is stopped gracefully so that it leaves its group. Every (API, version) seen
must lie within the range the broker advertises in its ApiVersions answer, and the requests
the product relies on must all have been seen: produce with the idempotent producer, fetch,
list offsets, metadata, the group requests, offset commit and fetch, and topic creation.
"""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from contracts.events import EventType
from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.kafka_probe import kafka_request
from tests.support.processes import folded_events, running_services
from tests.support.roadmap_events import shipment
from tests.support.services import wait_ready
from tests.support.tcp_proxy import proxied_broker

API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
}
"""The requests the product must send in this run (the services' own work)."""


def broker_api_ranges(host: str, port: int) -> dict[int, tuple[int, int]]:
    """The broker's ApiVersions (v0) answer: API key -> (lowest, highest) version."""
    answer = kafka_request(host, port, 18, 0, timeout=5)
    error, count = struct.unpack(">hi", answer[:6])
    assert error == 0
    ranges = {}
    for index in range(count):
        key, lowest, highest = struct.unpack(">hhh", answer[6 + 6 * index : 12 + 6 * index])
        ranges[key] = (lowest, highest)
    return ranges


async def test_every_request_the_services_send_is_a_version_kafka_4_accepts(
    tmp_path: Path,
) -> None:
    run = f"proto{uuid.uuid4().hex[:6]}"
    with proxied_broker(tmp_path / "kafka.log") as broker:
        node = broker.broker.nodes[0]
        ranges = broker_api_ranges("127.0.0.1", node.client_port)
        seen: Counter[tuple[int, int]] = Counter()
        broker.proxy.requests = seen
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")
        assert kafka.enable_idempotence  # the tests turn it on for Apache Kafka
        with running_services(kafka, tmp_path, run) as services:
            for service in services.values():
                await wait_ready(service.base_url, timeout=120)
            at = datetime(2026, 3, 1, tzinfo=UTC)
            events = [
                shipment(
                    f"{run}-{n}",
                    f"{run}-s{n}",
                    occurred=at,
                    route=("KZ", "BY"),
                    mode="road",
                    commodity="flour",
                    tonnes="10.5",
                    shipped_on=date(2026, 3, 1),
                )
                for n in range(20)
            ]
            async with httpx.AsyncClient(base_url=services["ingest"].base_url) as client:
                answer = await client.post(
                    "/v1/events", json=[json.loads(e.value or b"") for e in events[:10]]
                )
                assert answer.status_code == 202, answer.text
            producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
            await producer.start()
            try:
                topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[EventType.TRADE_SHIPMENT])
                for event in events[10:]:
                    await producer.send_and_wait(topic, event.value, key=event.key)
            finally:
                await producer.stop()
            folded = await folded_events(services["metrics"].base_url, len(events))
            assert folded == len(events)
            ingest = services["ingest"].process
            ingest.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(ingest.wait, 30) == 0

    by_api: dict[str, list[int]] = {}
    for key, version in sorted(seen):
        by_api.setdefault(API_NAMES.get(key, f"api {key}"), []).append(version)
    print("requests by API and version:", by_api, f"({sum(seen.values())} frames)")
    outside = {
        (API_NAMES.get(key, key), version, ranges.get(key))
        for key, version in seen
        if key not in ranges or not ranges[key][0] <= version <= ranges[key][1]
    }
    assert outside == set(), f"requests outside Apache Kafka's ranges: {outside}"
    missing = {name for key, name in API_NAMES.items() if not any(k == key for k, _ in seen)}
    assert missing == set(), f"requests the product never sent here: {missing}"
