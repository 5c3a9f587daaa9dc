"""A service built on the shared runtime: HTTP endpoints, readiness, topics, clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.config import KafkaSettings, ServiceSettings
from services.common.embedded_broker import free_port
from services.common.http import health_app
from services.common.kafka import consumer_options, make_broker
from services.common.runtime import ServiceApp, broker_check, serve
from tests.support.kafka import scratch_topic, unique_name


def _probe_app(kafka: KafkaSettings, topic: str) -> ServiceApp:
    settings = ServiceSettings(http_port=free_port(), kafka=kafka)
    registry = CollectorRegistry()
    seen = Counter("probe_messages_total", "Messages the probe consumed", registry=registry)
    broker = make_broker(kafka, service="probe")

    @broker.subscriber(
        topic,
        group_id=unique_name("probe"),
        auto_offset_reset="earliest",
        **consumer_options(kafka),
    )
    async def count(_: bytes) -> None:
        seen.inc()

    http = health_app(registry, {"kafka": broker_check(broker, timeout=1.0)})
    return ServiceApp("probe", settings, broker, registry, http, topics=[scratch_topic(topic)])


@pytest.fixture
async def running(kafka_settings: KafkaSettings) -> AsyncIterator[tuple[ServiceApp, str]]:
    topic = unique_name("roadmap.test.probe")
    app = _probe_app(kafka_settings, topic)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop))
    await asyncio.wait_for(app.started.wait(), timeout=30)
    yield app, topic
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_running_service_is_ready_and_counts_what_it_consumes(
    running: tuple[ServiceApp, str],
) -> None:
    """Once started, /healthz and /readyz answer 200, and /metrics shows consumed messages."""
    app, topic = running
    base = f"http://127.0.0.1:{app.settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        assert (await client.get("/healthz")).json() == {"status": "alive"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["kafka"]["ok"] is True
        await app.broker.publish(b"hello", topic)
        for _ in range(100):
            metrics = (await client.get("/metrics")).text
            if "probe_messages_total 1.0" in metrics:
                break
            await asyncio.sleep(0.1)
        assert "probe_messages_total 1.0" in metrics


async def test_service_without_broker_stays_alive_but_not_ready() -> None:
    """With Kafka unreachable the service keeps running: /healthz 200, /readyz 503 naming Kafka;
    a stop request still ends it promptly."""
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    app = _probe_app(nowhere, unique_name("roadmap.test.none"))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop))
    base = f"http://127.0.0.1:{app.settings.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        for _ in range(50):
            try:
                alive = await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        assert alive.status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"]["ok"] is False
    assert not app.started.is_set()
    stop.set()
    await asyncio.wait_for(task, timeout=15)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_a_running_service_in_order(
    kafka_settings: KafkaSettings, signum: signal.Signals
) -> None:
    """SIGTERM or SIGINT to the process makes serve() stop the broker and HTTP server and return;
    the HTTP port is closed afterwards."""
    app = _probe_app(kafka_settings, unique_name("roadmap.test.signal"))
    task = asyncio.create_task(serve(app))
    await asyncio.wait_for(app.started.wait(), timeout=30)
    os.kill(os.getpid(), signum)
    await asyncio.wait_for(task, timeout=30)
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{app.settings.http_port}/healthz")
