"""Contract examples through a FastStream broker wired by the shared plumbing, in memory."""

from __future__ import annotations

import httpx
from faststream.kafka import KafkaMessage, TestKafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts.codec import Accepted, Rejected, decode_event
from contracts.examples import invalid_examples, valid_examples
from contracts.keys import message_key
from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.http import CheckResult, health_app
from services.common.kafka import make_broker
from services.common.runtime import broker_check


async def test_every_example_reaches_a_subscriber_byte_for_byte() -> None:
    """Raw bytes published to each upstream topic arrive unchanged, so the contract decoder (not
    FastStream's JSON parsing, which would turn amounts into floats) sees exactly what was sent."""
    broker = make_broker(KafkaSettings(), service="test")
    seen: list[tuple[str, bytes]] = []

    for spec in UPSTREAM_TOPIC_BY_TYPE.values():

        @broker.subscriber(spec.name)
        async def collect(message: KafkaMessage) -> None:
            record = message.raw_message
            assert not isinstance(record, tuple)
            seen.append((record.topic, message.body))

    async with TestKafkaBroker(broker):
        for example in valid_examples():
            topic = UPSTREAM_TOPIC_BY_TYPE[example.event_type].name
            await broker.publish(example.raw, topic)
        for bad in invalid_examples():
            if bad.sent_as is not None:
                await broker.publish(bad.raw, UPSTREAM_TOPIC_BY_TYPE[bad.sent_as].name)

    valid = {e.raw: e for e in valid_examples()}
    mismatched = {e.raw: e for e in invalid_examples() if e.sent_as is not None}
    assert len(seen) == len(valid) + len(mismatched)
    for topic, body in seen:
        expected = valid[body].event_type if body in valid else mismatched[body].sent_as
        assert expected is not None
        result = decode_event(body, expected_type=expected)
        if body in valid:
            assert isinstance(result, Accepted)
            assert topic == UPSTREAM_TOPIC_BY_TYPE[result.event.type].name
            assert message_key(result.event)
        else:
            assert isinstance(result, Rejected)
            assert result.reason is mismatched[body].reason


async def test_health_endpoints_report_broker_and_checks() -> None:
    """/healthz is always 200; /readyz is 200 only while every check passes and names the one that
    fails; /metrics serves the service's own registry in Prometheus text format."""
    broker = make_broker(KafkaSettings(), service="test")
    registry = CollectorRegistry()
    Counter("roadmap_test_events_total", "Test counter", registry=registry).inc(3)
    caught_up = CheckResult(False, "replaying partition 2")

    async def replay() -> CheckResult:
        return caught_up

    app = health_app(registry, {"kafka": broker_check(broker), "replay": replay})
    async with TestKafkaBroker(broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            assert (await client.get("/healthz")).status_code == 200
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["checks"] == {
                "kafka": {"ok": True, "detail": "connected"},
                "replay": {"ok": False, "detail": "replaying partition 2"},
            }
            caught_up = CheckResult(True, "caught up")
            assert (await client.get("/readyz")).status_code == 200
            metrics = await client.get("/metrics")
            assert metrics.headers["content-type"].startswith("text/plain")
            assert "roadmap_test_events_total 3.0" in metrics.text
