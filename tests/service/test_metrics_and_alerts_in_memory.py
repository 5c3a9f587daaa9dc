"""Metrics' and the alerts evaluator's own handlers, in memory.

Metrics: the canonical records sit in an ``InMemoryKafka`` log; its FastStream subscriber is
given the partitions as a group join would and fed each fetched batch through FastStream's own
message processing; its KPI snapshots land in the log through ``InMemoryPublisher``. Its
``/metrics`` must equal the independent reference fold.

Alerts: the evaluator reads the KPI topic of such a log with ``InMemoryConsumer`` (what
``state_reader`` builds on Kafka) and publishes its alert records to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from aiokafka import TopicPartition

from contracts.history import IndicatorHistory
from contracts.records import AlertState, AlertTransition, KpiSnapshot
from contracts.topics import ALERT_TRANSITIONS, CANONICAL_EVENTS, DEAD_LETTERS, KPI_SNAPSHOTS
from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.publishing import OutboundRecord
from services.common.runtime import ServiceApp
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from services.metrics.snapshots import snapshot_key
from tests.support.alerts_stack import ROADMAP, on_target, write_alerts_file
from tests.support.in_memory import (
    InMemoryConsumer,
    InMemoryKafka,
    InMemoryPublisher,
    assign,
    deliver,
    running_in_memory,
    subscriber_of,
)
from tests.support.processes import metric_total
from tests.support.reference_fold import differences, fault_stream, observed_series, reference_fold
from tests.support.roadmap_events import canonical_record
from tests.support.streams import Fate
from tests.support.waiting import until

T = TypeVar("T")
KAFKA = KafkaSettings(topic_partitions=3)
FIXED = datetime(2026, 6, 30, 12, tzinfo=UTC)


async def _get(app: ServiceApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path)


def _latest(kafka: InMemoryKafka) -> dict[str, KpiSnapshot]:
    """The newest snapshot per indicator on the KPI topic (one key, one partition)."""
    latest: dict[str, KpiSnapshot] = {}
    for record in kafka.records(KPI_SNAPSHOTS.name):
        snapshot = KpiSnapshot.model_validate_json(record.value)
        latest[snapshot.indicator] = snapshot
    return latest


async def test_metrics_folds_batches_to_the_reference_scorecard_and_publishes_it() -> None:
    """Three thousand messages' canonical events (corrections, stale versions re-sent, ties)
    folded batch by batch: /metrics equals the reference fold series by series, and the KPI
    topic's latest snapshot of every indicator carries the same value."""
    stream = fault_stream(23, 3_000, run="svc")
    expected = reference_fold(stream.messages, ROADMAP)
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    for message in stream.messages:
        if message.fate is Fate.CANONICAL:
            kafka.append(canonical_record(KAFKA, message))
    settings = MetricsSettings(kafka=KAFKA, clock="event", snapshot_interval=0.2)
    app = create_metrics(settings, wall_clock=lambda: FIXED, publisher=InMemoryPublisher(kafka))
    async with running_in_memory(app):
        assert (await _get(app, "/readyz")).status_code == 503  # no partitions yet
        subscriber = subscriber_of(app.broker, CANONICAL_EVENTS.name)
        consumer = InMemoryConsumer(kafka)
        partitions = [TopicPartition(CANONICAL_EVENTS.name, p) for p in range(3)]
        await assign(subscriber, consumer, partitions)
        folded = await deliver(subscriber, consumer)
        assert folded == stream.count(Fate.CANONICAL)
        text = (await _get(app, "/metrics")).text
        assert differences(expected.series(), observed_series([text])) == []
        assert (await _get(app, "/readyz")).status_code == 200
        latest = await until(
            "a whole-topic snapshot of every indicator with the folded value",
            _async(lambda: _latest(kafka)),
            lambda found: {i: s.value for i, s in found.items()} == expected.values,
            timeout=10,
        )
    assert all(s.partitions == [0, 1, 2] for s in latest.values())


def _put_snapshots(kafka: InMemoryKafka, snapshots: Sequence[KpiSnapshot]) -> None:
    for s in snapshots:
        kafka.append(
            OutboundRecord(KPI_SNAPSHOTS.name, snapshot_key(s), s.model_dump_json().encode())
        )


def _alert_records(kafka: InMemoryKafka) -> list[AlertTransition]:
    return [
        AlertTransition.model_validate_json(r.value) for r in kafka.records(ALERT_TRANSITIONS.name)
    ]


async def test_a_kpi_snapshot_behind_its_trajectory_opens_fires_and_resolves(
    tmp_path: Path,
) -> None:
    """On the event clock: jobs far behind opens RoadmapTargetBehind as pending; a snapshot a
    day later (its ``for``) fires it; back on target, it resolves once ``keep_firing_for``
    passed. Each step is a record on the alerts topic, on /v1/alerts and in the gauges."""
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    for topic in (ALERT_TRANSITIONS, KPI_SNAPSHOTS, CANONICAL_EVENTS, DEAD_LETTERS):
        kafka.log(topic.name)  # the topics exist, empty
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[{"name": "console", "kind": "console"}],
        for_="1d",
        per_alert={"RoadmapTargetBehind": {"for": "1d", "keep_firing_for": "2d"}},
    )
    settings = AlertsSettings(kafka=KAFKA, clock="event", file=alerts_file, watch_groups={})
    app = create_alerts(
        settings,
        wall_clock=lambda: FIXED,
        publisher=InMemoryPublisher(kafka),
        readers=kafka.readers(),
    )
    day = datetime(2026, 3, 1, tzinfo=UTC)
    behind = {"jobs_created": {"sum": 10}}

    def jobs() -> list[AlertTransition]:
        return [r for r in _alert_records(kafka) if r.labels.get("indicator") == "jobs_created"]

    async with running_in_memory(app):
        _put_snapshots(kafka, on_target(day, **behind))
        opened = await until("jobs pending", _async(jobs), lambda r: len(r) == 1, timeout=10)
        assert opened[0].state is AlertState.PENDING
        assert opened[0].alertname.value == "RoadmapTargetBehind"

        _put_snapshots(kafka, on_target(day + timedelta(days=1), **behind))
        fired = await until("jobs firing", _async(jobs), lambda r: len(r) == 2, timeout=10)
        assert fired[-1].state is AlertState.FIRING
        assert fired[-1].dedup_key == opened[0].dedup_key
        listed = (await _get(app, "/v1/alerts")).json()["alerts"]
        assert [a["state"] for a in listed if a["labels"]["indicator"] == "jobs_created"] == [
            "firing"
        ]
        text = (await _get(app, "/metrics")).text
        assert (
            metric_total(
                text, "roadmap_alerts_active", alertname="RoadmapTargetBehind", state="firing"
            )
            == 1
        )

        back = day + timedelta(days=2)
        _put_snapshots(kafka, on_target(back))
        await until(
            "an evaluation at the day it was back on target",
            lambda: _get(app, "/metrics"),
            lambda answer: (
                metric_total(answer.text, "roadmap_alerts_evaluation_timestamp_seconds")
                == back.timestamp()
            ),
            timeout=10,
        )
        assert [r.state for r in jobs()] == [AlertState.PENDING, AlertState.FIRING]
        _put_snapshots(kafka, on_target(back + timedelta(days=2, hours=1)))
        ended = await until("jobs resolved", _async(jobs), lambda r: len(r) == 3, timeout=10)
        assert ended[-1].state is AlertState.RESOLVED
    others = [r for r in _alert_records(kafka) if r.labels.get("indicator") != "jobs_created"]
    assert others == []  # every other indicator sat on its target throughout


def _async(read: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """``read`` as the coroutine ``until`` polls."""

    async def call() -> T:
        return read()

    return call


async def test_replayed_records_are_folded_but_not_taken_for_latency() -> None:
    """A record already on the topic when its partition was assigned is replayed: its age is
    not the pipeline's latency, so only records published after the assignment are observed."""
    stream = fault_stream(5, 400, run="lat")
    canonical = [canonical_record(KAFKA, m) for m in stream.messages if m.fate is Fate.CANONICAL]
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    for record in canonical[:300]:
        kafka.append(record)
    settings = MetricsSettings(kafka=KAFKA, clock="event")
    app = create_metrics(settings, wall_clock=lambda: FIXED, publisher=InMemoryPublisher(kafka))
    async with running_in_memory(app):
        subscriber = subscriber_of(app.broker, CANONICAL_EVENTS.name)
        consumer = InMemoryConsumer(kafka)
        await assign(
            subscriber, consumer, [TopicPartition(CANONICAL_EVENTS.name, p) for p in range(3)]
        )
        assert await deliver(subscriber, consumer) == 300
        text = (await _get(app, "/metrics")).text
        assert metric_total(text, "roadmap_metrics_events_total") == 300
        assert metric_total(text, "roadmap_metrics_event_latency_seconds_count") == 0
        for record in canonical[300:]:
            kafka.append(record)
        assert await deliver(subscriber, consumer) == len(canonical) - 300
        text = (await _get(app, "/metrics")).text
        assert metric_total(text, "roadmap_metrics_events_total") == len(canonical)
        assert (
            metric_total(text, "roadmap_metrics_event_latency_seconds_count")
            == len(canonical) - 300
        )


async def test_history_is_served_once_replayed_and_ends_at_the_scorecard() -> None:
    """GET /v1/indicators/{id}/history: 503 (with Retry-After) while the state is replayed; then
    one point per month end from the start, the last one at the evaluation time with the
    scorecard's value; 404 names the known indicators, 400 the known steps."""
    stream = fault_stream(29, 1_500, run="hist")
    kafka = InMemoryKafka(partitions=KAFKA.topic_partitions)
    for message in stream.messages:
        if message.fate is Fate.CANONICAL:
            kafka.append(canonical_record(KAFKA, message))
    settings = MetricsSettings(kafka=KAFKA, clock="event")
    app = create_metrics(settings, wall_clock=lambda: FIXED, publisher=InMemoryPublisher(kafka))
    path = "/v1/indicators/jobs_created/history"
    async with running_in_memory(app):
        early = await _get(app, path)
        assert (early.status_code, early.headers["retry-after"]) == (503, "5")
        subscriber = subscriber_of(app.broker, CANONICAL_EVENTS.name)
        consumer = InMemoryConsumer(kafka)
        await assign(
            subscriber, consumer, [TopicPartition(CANONICAL_EVENTS.name, p) for p in range(3)]
        )
        await deliver(subscriber, consumer)
        answer = await _get(app, path + "?step=month")
        text = (await _get(app, "/metrics")).text
        unknown = await _get(app, "/v1/indicators/nothing/history")
        weekly = await _get(app, path + "?step=week")
    assert answer.status_code == 200
    body = IndicatorHistory.model_validate_json(answer.content)
    assert body.partitions == [0, 1, 2]
    points = body.points
    assert points[0].on == date(2025, 1, 31)
    assert [p.on.month for p in points[:-1]] == [(m % 12) + 1 for m in range(len(points) - 1)]
    assert points[-1].on == body.evaluated_at.date()
    assert float(points[-1].value or 0) == metric_total(
        text, "roadmap_indicator_value", indicator="jobs_created"
    )
    assert all(
        sum(c["sum"] for c in p.partition_components.values()) == p.components["sum"]
        for p in points
    )
    assert unknown.status_code == 404
    assert "jobs_created" in unknown.json()["error"]
    assert weekly.status_code == 400
    assert "month" in weekly.json()["error"]
