"""Every consumer has a progress watchdog: metrics', the alerts evaluator's and alerts delivery's
(ingest's is in the fault suite, ``test_stalled_partition.py``).

Metrics and the alerts service run in this process against their own embedded broker behind a
``TcpProxy``. The test writes one record carrying a marker header to the canonical topic (read
by metrics and counted by the evaluator) and one to the alerts topic (read by delivery), and the
proxy corrupts both batches in every fetch. Each consumer must say it is stalled on its own
partition, at that offset, with the CRC error; the alerts service raises
``RoadmapPipelineStalled`` from its own watchdogs and from metrics' committed offsets; and once
the proxy stops, every consumer moves on by itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import EventType
from contracts.examples import valid_examples
from contracts.keys import canonical_key
from contracts.topics import ALERT_TRANSITIONS, CANONICAL_EVENTS, TOPICS
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from tests.support.alerts_stack import write_alerts_file
from tests.support.kafka import unique_name
from tests.support.processes import metric_total, scrape
from tests.support.receiver import RecordingReceiver
from tests.support.roadmap_events import publish_canonical
from tests.support.services import running_app, wait_ready
from tests.support.streams import EventFactory
from tests.support.tcp_proxy import ProxiedBroker, proxied_broker
from tests.support.waiting import until

STALL_AFTER = 2.0
CANONICAL_PARTITION, ALERTS_PARTITION = 0, 1


async def _readyz(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url}/readyz")
        body: dict[str, Any] = response.json()
        body["status_code"] = response.status_code
        return body


async def _alerts(base_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        listed: list[dict[str, Any]] = (await client.get(f"{base_url}/v1/alerts")).json()["alerts"]
        return listed


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[ProxiedBroker]:
    with proxied_broker(tmp_path / "kafka.log") as broker:
        yield broker


async def test_metrics_evaluator_and_delivery_each_report_their_own_stalled_partition(
    proxied: ProxiedBroker, tmp_path: Path
) -> None:
    kafka = KafkaSettings(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_partitions=3,
        topic_prefix=unique_name("watch") + ".",
    )
    await ensure_topics(kafka, TOPICS)
    group = unique_name("watch")
    metrics_app = create_metrics(
        MetricsSettings(
            http_port=free_port(), kafka=kafka, group_id=f"{group}-metrics", stall_after=STALL_AFTER
        )
    )
    alerts_app = create_alerts(
        AlertsSettings(
            http_port=free_port(),
            kafka=kafka,
            delivery_group_id=f"{group}-delivery",
            watch_groups={"metrics": f"{group}-metrics"},
            stall_after=STALL_AFTER,
            file=write_alerts_file(
                tmp_path / "alerts.yaml",
                receivers=[{"name": "console", "kind": "console"}],
                # Pending for a few seconds, so the alert fires naming all three stalls: a
                # firing alert's description is what held when it fired (until it repeats),
                # and the three consumers find their partitions stuck a second or two apart.
                per_alert={"RoadmapPipelineStalled": {"for": "6s", "keep_firing_for": "0s"}},
            ),
        )
    )
    marker = f"watchdog-marker-{uuid.uuid4().hex}".encode()
    canonical_topic = kafka.topic_name(CANONICAL_EVENTS)
    alerts_topic = kafka.topic_name(ALERT_TRANSITIONS)
    async with AsyncExitStack() as running:
        metrics = await running.enter_async_context(running_app(metrics_app, timeout=90))
        alerts = await running.enter_async_context(running_app(alerts_app, timeout=90))
        proxied.proxy.rewrite_to_client = lambda frame: frame.replace(marker, marker.upper())
        example = next(e for e in valid_examples() if e.name.startswith("trade.shipment/road"))
        decoded = decode_event(example.raw)
        assert isinstance(decoded, Accepted)
        transition = (
            b'{"alertname": "RoadmapTargetBehind", "state": "inactive", "labels": {}, '
            b'"annotations": {}, "since": "2026-01-01T00:00:00Z", "started_at": '
            b'"2026-01-01T00:00:00Z", "at": "2026-01-01T00:00:00Z", "dedup_key": "watchdog"}'
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await producer.start()
        try:
            headers = [("x-trace", marker)]
            canonical = await producer.send_and_wait(
                canonical_topic,
                encode_event(decoded.event),
                key=canonical_key(decoded.event),
                partition=CANONICAL_PARTITION,
                headers=headers,
            )
            alert = await producer.send_and_wait(
                alerts_topic,
                transition,
                key=b"watchdog",
                partition=ALERTS_PARTITION,
                headers=headers,
            )
        finally:
            await producer.stop()

        stuck_metrics = await until(
            "metrics /readyz 503 on its progress check",
            lambda: _readyz(metrics),
            lambda body: not body["checks"]["progress"]["ok"],
            timeout=30,
        )
        detail = stuck_metrics["checks"]["progress"]["detail"]
        assert stuck_metrics["status_code"] == 503
        assert (
            f"stalled: {canonical_topic} partition {CANONICAL_PARTITION} at offset "
            f"{canonical.offset}, 1 records behind" in detail
        ), detail
        assert "CorruptRecordException" in detail

        stuck_alerts = await until(
            "alerts /readyz 503 on its evaluator and its delivery",
            lambda: _readyz(alerts),
            lambda body: (
                not body["checks"]["evaluator"]["ok"] and not body["checks"]["delivery"]["ok"]
            ),
            timeout=30,
        )
        evaluator = stuck_alerts["checks"]["evaluator"]["detail"]
        delivery = stuck_alerts["checks"]["delivery"]["detail"]
        assert f"{canonical_topic} partition {CANONICAL_PARTITION} at offset" in evaluator
        assert (
            f"stalled: {alerts_topic} partition {ALERTS_PARTITION} at offset {alert.offset}"
            in delivery
        ), delivery
        assert "Invalid CRC" in delivery

        texts = {"metrics": await scrape(metrics), "alerts": await scrape(alerts)}
        assert metric_total(texts["metrics"], "roadmap_consumer_stalled", service="metrics") == 1
        assert (
            metric_total(
                texts["metrics"],
                "roadmap_consumer_lag_messages",
                topic=canonical_topic,
                partition=str(CANONICAL_PARTITION),
            )
            == 1
        )
        assert metric_total(texts["alerts"], "roadmap_consumer_stalled", topic=alerts_topic) == 1
        assert metric_total(texts["alerts"], "roadmap_consumer_stalled", topic=canonical_topic) == 1

        listed = await until(
            "RoadmapPipelineStalled firing on /v1/alerts",
            lambda: _alerts(alerts),
            lambda found: any(
                a["alertname"] == "RoadmapPipelineStalled" and a["state"] == "firing" for a in found
            ),
            timeout=30,
        )
        stalled = next(a for a in listed if a["alertname"] == "RoadmapPipelineStalled")
        description = stalled["annotations"]["description"]
        assert "alerts evaluator: " in description
        assert f"alerts delivery (group {group}-delivery): {alerts_topic}" in description
        assert f"metrics (group {group}-metrics): {canonical_topic}" in description

        proxied.proxy.rewrite_to_client = None
        await wait_ready(metrics, timeout=30)
        await wait_ready(alerts, timeout=30)
        for base_url in (metrics, alerts):
            text = await scrape(base_url)
            assert metric_total(text, "roadmap_consumer_stalled") == 0
        await until(
            "RoadmapPipelineStalled resolved",
            lambda: _alerts(alerts),
            lambda found: any(
                a["alertname"] == "RoadmapPipelineStalled" and a["state"] == "resolved"
                for a in found
            ),
            timeout=60,
        )


async def test_a_pipeline_that_goes_idle_after_a_burst_is_never_called_stalled(
    proxied: ProxiedBroker, tmp_path: Path
) -> None:
    """Metrics folds a burst and then nothing more comes. Its last records must be committed
    too: the alerts service watches its group's committed offsets, and a burst whose tail was
    never committed looked, once idle, like a stall (it did in ``make dev``, when the demo
    ended). For six STALL_AFTER periods: every check ready, nothing stalled, no alert."""
    kafka = KafkaSettings(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_partitions=3,
        topic_prefix=unique_name("idle") + ".",
    )
    await ensure_topics(kafka, TOPICS)
    group = unique_name("idle")
    metrics_app = create_metrics(
        MetricsSettings(
            http_port=free_port(), kafka=kafka, group_id=f"{group}-metrics", stall_after=STALL_AFTER
        )
    )
    alerts_app = create_alerts(
        AlertsSettings(
            http_port=free_port(),
            kafka=kafka,
            delivery_group_id=f"{group}-delivery",
            watch_groups={"metrics": f"{group}-metrics"},
            stall_after=STALL_AFTER,
            file=write_alerts_file(
                tmp_path / "alerts.yaml",
                receivers=[{"name": "console", "kind": "console"}],
                per_alert={"RoadmapPipelineStalled": {"for": "0s", "keep_firing_for": "0s"}},
            ),
        )
    )
    factory = EventFactory(group)
    burst = [factory.event(EventType.TRADE_SHIPMENT, n, 1) for n in range(3_000)]
    async with AsyncExitStack() as running:
        metrics = await running.enter_async_context(running_app(metrics_app, timeout=90))
        alerts = await running.enter_async_context(running_app(alerts_app, timeout=90))
        for chunk in range(0, len(burst), 500):
            await publish_canonical(kafka, burst[chunk : chunk + 500])
        await until(
            "metrics folded the burst",
            lambda: scrape(metrics),
            lambda text: metric_total(text, "roadmap_metrics_events_total") >= len(burst),
        )
        deadline = asyncio.get_running_loop().time() + 6 * STALL_AFTER
        checks = 0
        while asyncio.get_running_loop().time() < deadline:
            for base_url in (metrics, alerts):
                body = await _readyz(base_url)
                assert body["status_code"] == 200, body
                assert metric_total(await scrape(base_url), "roadmap_consumer_stalled") == 0
            checks += 1
            await asyncio.sleep(0.5)
        listed = await _alerts(alerts)
        assert not [a for a in listed if a["alertname"] == "RoadmapPipelineStalled"], listed
        assert checks >= 10


async def test_delivery_held_up_by_a_failing_receiver_names_the_receiver(
    proxied: ProxiedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook answering 503 holds a notification (delivery retries it, in order): after
    STALL_AFTER the delivery watchdog says so, with the receiver's answer as the last error;
    once the webhook answers 200, delivery moves on and every notification arrives."""
    kafka = KafkaSettings(
        bootstrap_servers=proxied.bootstrap_servers,
        topic_partitions=3,
        topic_prefix=unique_name("hook") + ".",
    )
    await ensure_topics(kafka, TOPICS)
    monkeypatch.setenv("HOOK_TEST_SECRET", "hook-test-key")
    failing = True
    receiver = RecordingReceiver(answer=lambda _: (503, {}) if failing else (200, {}))
    alerts_app = create_alerts(
        AlertsSettings(
            http_port=free_port(),
            kafka=kafka,
            delivery_group_id=unique_name("hook"),
            watch_groups={},
            stall_after=STALL_AFTER,
            file=write_alerts_file(
                tmp_path / "alerts.yaml",
                receivers=[
                    {
                        "name": "hook",
                        "kind": "webhook",
                        "url": receiver.url,
                        "secret_env": "HOOK_TEST_SECRET",
                    }
                ],
                per_alert={"RoadmapIndicatorStale": {"for": "0s", "keep_firing_for": "0s"}},
            ),
        )
    )
    async with receiver.running(), running_app(alerts_app, timeout=90) as alerts:
        held = await until(
            "alerts /readyz 503 on delivery",
            lambda: _readyz(alerts),
            lambda body: not body["checks"]["delivery"]["ok"],
            timeout=30,
        )
        detail = held["checks"]["delivery"]["detail"]
        assert "last error: receiver hook did not accept a notification (HTTP 503" in detail
        assert "retrying, attempt" in detail
        failing = False
        await wait_ready(alerts, timeout=30)
        await receiver.wait_for(lambda requests: len([r for r in requests if r.status == 200]) >= 7)
