"""Consumer groups on Apache Kafka's group coordinator: replicas join and leave mid-stream.

Two ingest replicas and two metrics replicas run as real processes in their groups. While a
stream of shipments flows in four chunks: a third ingest replica joins; one ingest replica
leaves gracefully (SIGTERM: it sends LeaveGroup); one metrics replica is SIGKILLed (the
coordinator notices when its 2 s session expires). Each rebalance is timed from the moment the
coordinator's group leaves ``Stable`` to the moment it is ``Stable`` again with the expected
members (``DescribeGroups``, polled every 50 ms). At the end every event is on the canonical
topic and the surviving metrics replica, which now owns every partition, shows the road
freight total of the whole stream, to the tonne.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.events import EventType
from contracts.topics import CANONICAL_EVENTS, TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.topics import ensure_topics
from tests.support.fault_report import FaultReport
from tests.support.kafka import RealBroker, read_until_quiet
from tests.support.processes import ServiceProcess, metric_samples, scrape, service_env
from tests.support.roadmap_events import shipment
from tests.support.services import spawn_service, wait_ready

CHUNK = 300
CHUNKS = 4


@contextlib.contextmanager
def _replica(
    name: str, kafka: KafkaSettings, run: str, tmp_path: Path, n: int
) -> Iterator[ServiceProcess]:
    env, base_url = service_env(name, kafka, run)
    log_path = tmp_path / f"{name}-{n}.log"
    with spawn_service(name, env, log_path=log_path) as process:
        yield ServiceProcess(name, base_url, log_path, process)


async def _group(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int]:
    (response,) = await admin.describe_consumer_groups([group])
    described = response.to_object()["groups"][0]
    return str(described["state"]), len(described["members"])


async def _until_stable(admin: AIOKafkaAdminClient, group: str, members: int) -> None:
    deadline = time.monotonic() + 60
    while await _group(admin, group) != ("Stable", members):
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} never Stable with {members} members")
        await asyncio.sleep(0.05)


async def _rebalance_s(admin: AIOKafkaAdminClient, group: str, members: int) -> float:
    """Seconds from the group leaving Stable to Stable with ``members`` members (60 s bound).

    A rebalance that completes between two polls is never seen off Stable: then the time since
    the last poll that still showed the old membership is given, an upper bound."""
    deadline = time.monotonic() + 60
    left_stable: float | None = None
    last_old = time.monotonic()
    state, count = "unknown", -1
    while time.monotonic() < deadline:
        state, count = await _group(admin, group)
        now = time.monotonic()
        if state != "Stable" and left_stable is None:
            left_stable = now
        if state == "Stable" and count == members:
            return now - (left_stable if left_stable is not None else last_old)
        if state == "Stable":
            last_old = now
        await asyncio.sleep(0.05)
    raise TimeoutError(f"group {group}: {state} with {count} members, wanted Stable with {members}")


async def test_replicas_join_and_leave_mid_stream_and_totals_stay_exact(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    run = f"groups{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")
    await ensure_topics(kafka, TOPICS)
    ingest_group, metrics_group = f"{run}-ingest", f"{run}-metrics"
    stream = [
        shipment(
            f"{run}-{n}",
            f"{run}-s{n}",
            occurred=datetime(2026, 2, 1, tzinfo=UTC),
            route=("KZ", "BY"),
            mode="road",
            commodity="flour",
            tonnes=n % 97 + 1,
            shipped_on=date(2026, 2, 1),
        )
        for n in range(CHUNK * CHUNKS)
    ]
    expected_tonnes = sum(n % 97 + 1 for n in range(CHUNK * CHUNKS))
    topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[EventType.TRADE_SHIPMENT])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await admin.start()
    await producer.start()
    times: dict[str, tuple[float, float]] = {}  # rebalance, and from the action to Stable

    async def send_chunk(index: int) -> None:
        for message in stream[index * CHUNK : (index + 1) * CHUNK]:
            await producer.send(topic, message.value, key=message.key)
        await producer.flush()

    try:
        with contextlib.ExitStack() as stack:
            ingest = [
                stack.enter_context(_replica("ingest", kafka, run, tmp_path, n)) for n in (1, 2)
            ]
            metrics = [
                stack.enter_context(_replica("metrics", kafka, run, tmp_path, n)) for n in (1, 2)
            ]
            for replica in [*ingest, *metrics]:
                await wait_ready(replica.base_url, timeout=120)
            await _until_stable(admin, ingest_group, 2)
            await _until_stable(admin, metrics_group, 2)
            await send_chunk(0)

            joining = asyncio.create_task(_rebalance_s(admin, ingest_group, 3))
            acted = time.monotonic()
            third = stack.enter_context(_replica("ingest", kafka, run, tmp_path, 3))
            times["an ingest replica joins"] = (await joining, time.monotonic() - acted)
            await wait_ready(third.base_url, timeout=120)
            await send_chunk(1)

            leaving = asyncio.create_task(_rebalance_s(admin, ingest_group, 2))
            acted = time.monotonic()
            ingest[0].process.send_signal(signal.SIGTERM)
            times["an ingest replica leaves (SIGTERM)"] = (await leaving, time.monotonic() - acted)
            assert await asyncio.to_thread(ingest[0].process.wait, 30) == 0
            await send_chunk(2)

            killed = asyncio.create_task(_rebalance_s(admin, metrics_group, 1))
            acted = time.monotonic()
            metrics[1].process.send_signal(signal.SIGKILL)
            times["a metrics replica is SIGKILLed"] = (await killed, time.monotonic() - acted)
            await send_chunk(3)

            canonical = await read_until_quiet(
                kafka, [kafka.topic_name(CANONICAL_EVENTS)], at_least=len(stream), timeout=120
            )
            survivor = metrics[0]
            deadline = time.monotonic() + 90
            tonnes = 0.0
            while time.monotonic() < deadline:
                samples = metric_samples(await scrape(survivor.base_url), "roadmap_indicator_value")
                tonnes = sum(
                    v for k, v in samples.items() if ("indicator", "road_freight_tonnes") in k
                )
                if tonnes == expected_tonnes:
                    break
                await asyncio.sleep(0.5)
    finally:
        await producer.stop()
        await admin.close()

    ids = {json.loads(r.value)["event_id"] for r in canonical}
    assert ids == {m.event_id for m in stream}
    assert tonnes == expected_tonnes, (tonnes, expected_tonnes)
    fault_report.injected(
        f"{len(stream)} shipments in {CHUNKS} chunks through 2 ingest and 2 metrics replicas; "
        "between chunks an ingest replica joined, one left by SIGTERM, a metrics replica was "
        "SIGKILLed (2 s sessions)"
    )
    fault_report.saw(
        "rebalance (group off Stable until Stable again; in brackets from the action, start-up "
        "or session expiry included): "
        + "; ".join(f"{what} {took:.2f} s ({total:.2f} s)" for what, (took, total) in times.items())
    )
    fault_report.checked(
        f"every event canonical ({len(ids)} distinct in {len(canonical)} records); the surviving "
        f"metrics replica's road freight {tonnes:,.0f} t = the stream's {expected_tonnes:,} t"
    )
