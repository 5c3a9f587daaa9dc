"""Fault 7: a partition that cannot be read stalls alone, loudly, and recovers by itself.

The three services run as processes behind a ``TcpProxy`` in front of their own Apache Kafka
node (the version the tiers run on; its client listener advertises the proxy).
An upstream producer (librdkafka, lz4) feeds all three partitions of the shipments topic. Then
the proxy starts corrupting, on its way to the clients, one uncompressed record batch of
partition 1: it flips one byte of a marker the batch carries in a header, so every fetch of it
fails aiokafka's CRC check, as a batch damaged on a broker's disk or on the wire would. Within
the configured ``STALL_AFTER`` (4 s here):

- ingest's ``/readyz`` answers 503 naming the topic, partition 1, the batch's offset and the
  CRC error, and ``roadmap_consumer_stalled`` reads 1 for that partition only;
- the alerts service, which watches ingest's group through its committed offsets, fires
  ``RoadmapPipelineStalled`` (critical) and the on-call webhook receives it;
- partitions 0 and 2 keep flowing to the canonical topic.

Once the proxy stops corrupting, ingest reads the batch on its own: every valid event is
canonical exactly once, nothing lands on the DLQ, metrics folds each event once, the stall
ends and the alert resolves. Ingest logs the episode once, not once per retry.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.events import EventType
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, TOPICS, TRADE_SHIPMENTS
from services.common.config import KafkaSettings
from services.common.topics import ensure_topics
from tests.support.alerts_stack import write_alerts_file
from tests.support.fault_report import FaultReport
from tests.support.kafka import read_until_quiet
from tests.support.librdkafka import Delivered, Outgoing, produce
from tests.support.processes import metric_samples, metric_total, running_services, scrape
from tests.support.receiver import Received, RecordingReceiver
from tests.support.services import wait_ready
from tests.support.streams import EventFactory
from tests.support.tcp_proxy import proxied_broker
from tests.support.waiting import until

STALL_AFTER_S = 4
PARTITIONS = 3
STUCK = 1
HOOK_SECRET = "stall-test-secret"


def _event_id(raw: bytes | None) -> str:
    return str(json.loads(raw or b"{}").get("event_id"))


def _stalled_alerts(requests: list[Received], state: str) -> list[dict[str, Any]]:
    found = []
    for request in requests:
        body = request.json()
        if body.get("alertname") == "RoadmapPipelineStalled" and body.get("state") == state:
            found.append(body)
    return found


async def _readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url}/readyz")
        return response.status_code, response.json()


async def test_an_unreadable_partition_stalls_alone_alerts_and_recovers_on_its_own(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    run = f"stall{random.randrange(16**6):06x}"
    factory = EventFactory(run)
    receiver = RecordingReceiver()
    marker = f"stall-marker-{uuid.uuid4().hex}".encode()
    damaged = marker.replace(b"marker", b"markeR")
    entity = iter(range(10**6))

    def shipments(partition: int, count: int, **options: Any) -> list[Outgoing]:
        return [
            Outgoing(
                topic,
                json.dumps(factory.body(EventType.TRADE_SHIPMENT, next(entity), 1)).encode(),
                key=b"upstream-%d" % partition,
                partition=partition,
                **options,
            )
            for _ in range(count)
        ]

    with proxied_broker(tmp_path / "kafka.log") as broker:
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=f"{run}.",
            topic_partitions=PARTITIONS,
        )
        topic = kafka.topic_name(TRADE_SHIPMENTS)
        await ensure_topics(kafka, TOPICS)
        alerts_file = write_alerts_file(
            tmp_path / "alerts.yaml",
            receivers=[
                {
                    "name": "oncall",
                    "kind": "webhook",
                    "url": f"{receiver.url}/oncall",
                    "secret_env": "STALL_HOOK_SECRET",
                }
            ],
            routes=[{"match": {"alertname": ["RoadmapPipelineStalled"]}, "receivers": ["oncall"]}],
            per_alert={"RoadmapPipelineStalled": {"for": "0s", "keep_firing_for": "0s"}},
        )
        stall = str(STALL_AFTER_S)
        extra = {
            "ingest": {"INGEST_STALL_AFTER": stall, "INGEST_LOG_FORMAT": "json"},
            "metrics": {"METRICS_STALL_AFTER": stall},
            "alerts": {
                "ALERTS_STALL_AFTER": stall,
                "ALERTS_FILE": str(alerts_file),
                "STALL_HOOK_SECRET": HOOK_SECRET,
            },
        }
        async with receiver.running():
            with running_services(kafka, tmp_path, run, extra_env=extra) as services:
                ingest, metrics, alerts = (services[n] for n in ("ingest", "metrics", "alerts"))
                for service in services.values():
                    await wait_ready(service.base_url, timeout=120)
                sent: list[Delivered] = []
                lz4 = {"compression.type": "lz4", "linger.ms": 20}
                sent += await asyncio.to_thread(
                    produce,
                    kafka.bootstrap_servers,
                    [m for p in range(PARTITIONS) for m in shipments(p, 10)],
                    **lz4,
                )
                canonical_topic = kafka.topic_name(CANONICAL_EVENTS)
                await until(
                    "the first 30 events canonical",
                    lambda: read_until_quiet(kafka, [canonical_topic], at_least=30, quiet_s=0.5),
                    lambda records: len(records) >= 30,
                )

                # The damage: from now on, the batch carrying the marker arrives corrupt.
                corrupted: list[float] = []  # when a response carrying the batch went by

                def corrupt(frame: bytes) -> bytes:
                    if marker not in frame:
                        return frame
                    corrupted.append(time.monotonic())
                    return frame.replace(marker, damaged)

                broker.proxy.rewrite_to_client = corrupt
                stuck = await asyncio.to_thread(
                    produce,
                    kafka.bootstrap_servers,
                    shipments(STUCK, 1, headers=[("x-trace", marker)]),
                )
                injected_at = time.monotonic()
                injected_ts = datetime.now(UTC).isoformat(timespec="milliseconds")
                stuck_offset = stuck[0].offset
                behind = await asyncio.to_thread(
                    produce, kafka.bootstrap_servers, shipments(STUCK, 10), **lz4
                )
                flowing: list[Delivered] = []

                async def keep_publishing(stop: asyncio.Event) -> None:
                    while not stop.is_set():
                        flowing.extend(
                            await asyncio.to_thread(
                                produce,
                                kafka.bootstrap_servers,
                                [*shipments(0, 1), *shipments(2, 1)],
                            )
                        )
                        await asyncio.sleep(0.5)

                stop_publishing = asyncio.Event()
                publisher = asyncio.create_task(keep_publishing(stop_publishing))
                fault_report.injected(
                    f"partition {STUCK} of {topic}: the batch at offset {stuck_offset} corrupted "
                    f"on every fetch (one byte of a header flipped: CRC mismatch), 10 lz4 "
                    f"records behind it; partitions 0 and 2 fed 1 event/s each"
                )

                status, body = await until(
                    "ingest /readyz 503 naming the stalled partition",
                    lambda: _readyz(ingest.base_url),
                    lambda answer: (
                        answer[0] == 503 and "stalled" in answer[1]["checks"]["consumer"]["detail"]
                    ),
                    timeout=60,
                    interval=0.2,
                )
                not_ready_s = time.monotonic() - injected_at
                detail = body["checks"]["consumer"]["detail"]
                where = f"{topic} partition {STUCK} at offset {stuck_offset}, 11 records behind"
                assert f"stalled: {where}" in detail, detail
                assert "CorruptRecordException" in detail
                assert "Invalid CRC" in detail
                assert body["checks"]["broker"]["ok"] is True
                text = await scrape(ingest.base_url)
                stalled = metric_samples(text, "roadmap_consumer_stalled")
                by_partition = {
                    dict(labels)["partition"]: value
                    for labels, value in stalled.items()
                    if dict(labels)["topic"] == topic
                }
                assert by_partition == {"0": 0.0, "1": 1.0, "2": 0.0}, stalled
                lag = metric_total(
                    text, "roadmap_consumer_lag_messages", topic=topic, partition=str(STUCK)
                )
                assert lag == 11
                fault_report.checked(
                    f"ingest /readyz 503 {not_ready_s:.1f} s after the damage (stall after "
                    f"{STALL_AFTER_S} s): {detail!r}"
                )
                fault_report.checked(
                    f"roadmap_consumer_stalled {by_partition} for {topic}; lag of partition "
                    f"{STUCK}: {lag:.0f}"
                )

                await receiver.wait_for(lambda r: bool(_stalled_alerts(r, "firing")), timeout=60)
                alerted_s = time.monotonic() - injected_at
                firing = _stalled_alerts(receiver.requests, "firing")[0]
                assert firing["labels"] == {
                    "alertname": "RoadmapPipelineStalled",
                    "indicator": "pipeline_progress",
                    "severity": "critical",
                    "owner": "platform",
                    "roadmap": "kz-by-2025-2029",
                }
                description = firing["annotations"]["description"]
                assert f"ingest (group {run}-ingest): {topic} partition {STUCK}" in description
                assert f"at offset {stuck_offset}" in description
                assert receiver.requests[0].signature_valid(HOOK_SECRET.encode())
                fault_report.checked(
                    f"RoadmapPipelineStalled (critical, owner platform) at the webhook "
                    f"{alerted_s:.1f} s after the damage: {firing['annotations']['summary']!r}"
                )

                # Hold the stall for three more STALL_AFTER periods (still one log line), then
                # stop feeding partitions 0 and 2 and see where their events got to.
                await asyncio.sleep(3 * STALL_AFTER_S)
                stop_publishing.set()
                await publisher
                canonical = await read_until_quiet(kafka, [canonical_topic], quiet_s=1.5)
                before_fix = {_event_id(r.value) for r in canonical}
                assert len(flowing) >= 2 * STALL_AFTER_S
                assert {_event_id(d.value) for d in flowing} <= before_fix
                assert not {_event_id(d.value) for d in [*stuck, *behind]} & before_fix
                status, _ = await _readyz(ingest.base_url)
                assert status == 503
                fault_report.checked(
                    f"partitions 0 and 2 kept flowing: all {len(flowing)} events published there "
                    f"during the stall canonical, none of partition {STUCK}'s 11"
                )

                broker.proxy.rewrite_to_client = None
                fixed_at = time.monotonic()
                await wait_ready(ingest.base_url, timeout=60)
                recovered_s = time.monotonic() - fixed_at
                await receiver.wait_for(lambda r: bool(_stalled_alerts(r, "resolved")), timeout=60)
                resolved_s = time.monotonic() - fixed_at
                fault_report.checked(
                    f"cause removed: ingest ready again in {recovered_s:.1f} s, the alert "
                    f"resolved at the webhook in {resolved_s:.1f} s"
                )

                sent += stuck + behind + flowing
                want = Counter(_event_id(d.value) for d in sent)
                assert all(n == 1 for n in want.values())
                records = await until(
                    "every valid event canonical",
                    lambda: read_until_quiet(
                        kafka, [canonical_topic], at_least=len(want), quiet_s=1.0
                    ),
                    lambda found: {_event_id(r.value) for r in found} >= set(want),
                )
                seen = Counter(_event_id(r.value) for r in records)
                assert seen == want, "an event is missing or canonical twice"
                dlq = await read_until_quiet(kafka, [kafka.topic_name(DEAD_LETTERS)], quiet_s=0.5)
                assert dlq == []
                ingest_text = await scrape(ingest.base_url)
                assert metric_total(ingest_text, "roadmap_ingest_events_accepted_total") == len(
                    want
                )
                assert metric_total(ingest_text, "roadmap_ingest_events_duplicate_total") == 0
                assert metric_total(ingest_text, "roadmap_consumer_stalled") == 0
                await wait_ready(metrics.base_url, timeout=60)
                folded = await until(
                    "metrics folded every event",
                    lambda: scrape(metrics.base_url),
                    lambda t: metric_total(t, "roadmap_metrics_events_total") >= len(want),
                )
                assert metric_total(folded, "roadmap_metrics_events_total") == len(want)
                status, _ = await _readyz(alerts.base_url)
                assert status == 200
                fault_report.checked(
                    f"nothing lost, nothing twice: {len(want)} events published, {len(records)} "
                    f"canonical records of {len(seen)} distinct events, 0 on the DLQ; ingest "
                    f"accepted {len(want)}, 0 duplicates; metrics folded {len(want)}"
                )

                lines = [json.loads(line) for line in ingest.log_path.read_text().splitlines()]
                stalls = [line for line in lines if line["msg"].startswith("consumer stalled")]
                moving = [line for line in lines if line["msg"].startswith("consumer moving")]
                # From the damage on: before it, on a fresh Apache Kafka, aiokafka logs at error
                # that the group coordinator is not available yet (__consumer_offsets is being
                # created), which is not part of the episode.
                errors = [
                    line for line in lines if line["level"] == "error" and line["ts"] >= injected_ts
                ]
                assert len(stalls) == 1, stalls
                assert stalls[0]["level"] == "error"
                assert stalls[0]["partition"] == STUCK
                assert stalls[0]["offset"] == stuck_offset
                assert len(moving) == 1, moving
                assert errors == stalls
                stalled_s = fixed_at - injected_at
                assert len(corrupted) <= 2 * stalled_s + 5  # about one fetch a second (RETRY_S)
                fault_report.checked(
                    f"ingest logged the episode once: 1 error line over {stalled_s:.0f} s of "
                    f"stall in which the batch was fetched {len(corrupted)} times, and 1 line "
                    f"when it moved again"
                )
