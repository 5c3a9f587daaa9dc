"""``create_app(settings)``: build one metrics instance. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from contracts.roadmap.loader import load_roadmap
from contracts.topics import CANONICAL_EVENTS, KPI_SNAPSHOTS
from services.common.http import health_app
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, OutboundRecord, PublishError
from services.common.runtime import ServiceApp, broker_check
from services.common.watchdog import ConsumerGauges
from services.metrics.consumer import CanonicalConsumer
from services.metrics.exporter import RoadmapCollector, readings
from services.metrics.fold import PartitionState
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import compile_roadmap
from services.metrics.readings import event_clock
from services.metrics.settings import MetricsSettings
from services.metrics.snapshots import SnapshotPolicy, snapshot_key, snapshot_of

SERVICE = "metrics"
CHANGE_COALESCE_S = 1.0
"""Snapshots of changed indicators go out at most this often (a burst is one snapshot)."""

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: MetricsSettings, *, wall_clock: Callable[[], datetime] = _utc_now
) -> ServiceApp:
    """Load the roadmap file (``RoadmapFileError`` names the line), then wire one instance."""
    plan = compile_roadmap(load_roadmap(settings.roadmap_file))
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    broker = make_broker(
        settings.kafka,
        service=SERVICE,
        registry=registry,
        description="Folds canonical events into roadmap indicators and KPI snapshots.",
    )
    publisher = BatchPublisher(settings.kafka, service=SERVICE)
    kpi_topic = settings.kafka.topic_name(KPI_SNAPSHOTS)
    policy = SnapshotPolicy(settings.snapshot_interval)
    last_change_publish = [0.0]

    def evaluation_time(states: Mapping[int, PartitionState]) -> datetime:
        if settings.clock == "event":
            return event_clock(states) or wall_clock()
        return wall_clock()

    async def publish_snapshots(*, changed_only: bool) -> None:
        if not consumer.caught_up:
            return  # a partial replay is not a state worth announcing
        states = dict(consumer.states)
        owned = sorted(states)
        now_s = time.monotonic()
        if changed_only and now_s - last_change_publish[0] < CHANGE_COALESCE_S:
            return
        current = readings(plan, states, evaluation_time(states))
        due = policy.due(current, now_s, owned)
        if not due:
            return
        snapshots = [
            snapshot_of(
                r, roadmap=plan.roadmap, partitions=owned, partition_count=consumer.partition_count
            )
            for r in due
        ]
        records = [
            OutboundRecord(kpi_topic, snapshot_key(s), s.model_dump_json().encode())
            for s in snapshots
        ]
        try:
            await publisher.publish(records)
        except PublishError as exc:
            metrics.snapshot_failures.inc()
            log.warning("KPI snapshots not published", extra={"error": str(exc)})
            return
        policy.published(due, now_s, owned)
        last_change_publish[0] = now_s
        metrics.snapshots.inc(len(records))

    async def after_batch() -> None:
        await publish_snapshots(changed_only=True)

    consumer = CanonicalConsumer(
        broker,
        settings,
        plan,
        metrics,
        ConsumerGauges(registry),
        topic=settings.kafka.topic_name(CANONICAL_EVENTS),
        after_batch=after_batch,
    )
    broker.publisher(
        kpi_topic,
        title="metrics: KPI snapshots",
        description=KPI_SNAPSHOTS.description,
        schema=KPI_SNAPSHOTS.value,
    )
    registry.register(RoadmapCollector(plan, consumer.states, evaluation_time))

    ticker: list[asyncio.Task[None]] = []

    async def tick() -> None:
        while True:
            await asyncio.sleep(min(settings.snapshot_interval, 5.0))
            await publish_snapshots(changed_only=False)

    async def start_ticker() -> None:
        ticker.append(asyncio.create_task(tick(), name="metrics-snapshot-ticker"))

    async def stop_ticker() -> None:
        for task in ticker:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    http = health_app(
        registry,
        {
            "broker": broker_check(broker),
            "state": consumer.readiness,
            "progress": consumer.watchdog.readiness,
        },
        routes=[],
    )
    return ServiceApp(
        name=SERVICE,
        settings=settings,
        broker=broker,
        registry=registry,
        http=http,
        topics=[CANONICAL_EVENTS, KPI_SNAPSHOTS],
        connect=[publisher.start],
        after_start=[start_ticker, consumer.watchdog.start, consumer.committer.start],
        before_stop=[consumer.committer.stop, consumer.watchdog.stop, stop_ticker],
        disconnect=[publisher.stop],
    )
