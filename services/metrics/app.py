"""``create_app(settings)``: build one metrics instance. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from contracts.roadmap.loader import load_roadmap
from contracts.topics import CANONICAL_EVENTS, KPI_SNAPSHOTS
from services.common.http import health_app
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, RecordPublisher
from services.common.runtime import ServiceApp, broker_check
from services.common.watchdog import ConsumerGauges
from services.metrics.consumer import CanonicalConsumer
from services.metrics.exporter import RoadmapCollector
from services.metrics.fold import PartitionState
from services.metrics.http_api import history_route
from services.metrics.kpi_publisher import KpiPublisher
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import compile_roadmap
from services.metrics.readings import event_clock
from services.metrics.settings import MetricsSettings

SERVICE = "metrics"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: MetricsSettings,
    *,
    wall_clock: Callable[[], datetime] = _utc_now,
    publisher: RecordPublisher | None = None,
) -> ServiceApp:
    """Load the roadmap file (``RoadmapFileError`` names the line), then wire one instance.

    ``publisher`` replaces the Kafka producer of KPI snapshots (the ``service`` test tier)."""
    plan = compile_roadmap(load_roadmap(settings.roadmap_file))
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    broker = make_broker(
        settings.kafka,
        service=SERVICE,
        registry=registry,
        description="Folds canonical events into roadmap indicators and KPI snapshots.",
    )
    publisher = publisher or BatchPublisher(settings.kafka, service=SERVICE)
    kpi_topic = settings.kafka.topic_name(KPI_SNAPSHOTS)

    def evaluation_time(states: Mapping[int, PartitionState]) -> datetime:
        if settings.clock == "event":
            return event_clock(states) or wall_clock()
        return wall_clock()

    consumer = CanonicalConsumer(
        broker,
        settings,
        plan,
        metrics,
        ConsumerGauges(registry),
        topic=settings.kafka.topic_name(CANONICAL_EVENTS),
        after_batch=lambda: kpis.changed(),  # noqa: PLW0108 - kpis is made just below
    )
    kpis = KpiPublisher(
        plan,
        consumer,
        publisher,
        metrics,
        topic=kpi_topic,
        interval_s=settings.snapshot_interval,
        evaluation_time=evaluation_time,
    )
    broker.publisher(
        kpi_topic,
        title="metrics: KPI snapshots",
        description=KPI_SNAPSHOTS.description,
        schema=KPI_SNAPSHOTS.value,
    )
    registry.register(RoadmapCollector(plan, consumer.states, evaluation_time))

    http = health_app(
        registry,
        {
            "broker": broker_check(broker),
            "state": consumer.readiness,
            "progress": consumer.watchdog.readiness,
        },
        routes=[history_route(plan, consumer, evaluation_time)],
    )
    return ServiceApp(
        name=SERVICE,
        settings=settings,
        broker=broker,
        registry=registry,
        http=http,
        topics=[CANONICAL_EVENTS, KPI_SNAPSHOTS],
        connect=[publisher.start],
        after_start=[kpis.ticker.start, consumer.watchdog.start, consumer.committer.start],
        before_stop=[consumer.committer.stop, consumer.watchdog.stop, kpis.ticker.stop],
        disconnect=[publisher.stop],
    )
