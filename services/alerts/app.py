"""``create_app(settings)``: build one alerts instance. Nothing is created at import time."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.alerts_file import load_alerts_file
from contracts.records import AlertTransition
from contracts.roadmap.loader import load_roadmap
from contracts.topics import ALERT_TRANSITIONS, CANONICAL_EVENTS, DEAD_LETTERS, KPI_SNAPSHOTS
from services.alerts.delivery import Deliverer, subscribe_delivery
from services.alerts.evaluator import Evaluator
from services.alerts.group_watch import GroupWatch
from services.alerts.metrics import AlertsMetrics
from services.alerts.receivers import build_receivers, resolve_receivers
from services.alerts.settings import AlertsSettings
from services.common.http import health_app
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, RecordPublisher
from services.common.reading import StateReaders
from services.common.runtime import ServiceApp, broker_check
from services.common.watchdog import ConsumerGauges, ConsumerWatchdog

SERVICE = "alerts"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: AlertsSettings,
    *,
    wall_clock: Callable[[], datetime] = _utc_now,
    publisher: RecordPublisher | None = None,
    readers: StateReaders | None = None,
) -> ServiceApp:
    """Load the roadmap and alerts files (errors name file, line and field) and wire one instance.

    ``publisher`` and ``readers`` replace the Kafka producer of alert records and the
    evaluator's consumer (the ``service`` test tier runs the evaluator in memory with them).

    A webhook receiver whose secret variable is unset stops start-up with ``AlertsFileError``.
    """
    roadmap = load_roadmap(settings.roadmap_file)
    alerts_file = load_alerts_file(settings.file)
    active = resolve_receivers(alerts_file, settings.file, os.environ)
    registry = CollectorRegistry()
    metrics = AlertsMetrics(registry, sorted(active))
    broker = make_broker(
        settings.kafka,
        service=SERVICE,
        registry=registry,
        description="Evaluates KPI snapshots against the roadmap and notifies on-call staff.",
    )
    publisher = publisher or BatchPublisher(settings.kafka, service=SERVICE)
    policy = alerts_file.retry
    client = httpx.AsyncClient(timeout=policy.timeout.total_seconds(), follow_redirects=False)
    receivers = build_receivers(
        active,
        client,
        generator_url=settings.external_url.rstrip("/") + "/v1/alerts",
        repeat_interval=alerts_file.lifecycle.repeat_interval,
        wall_clock=wall_clock,
    )
    gauges = ConsumerGauges(registry)
    delivery_watchdog = ConsumerWatchdog(
        service=SERVICE,
        consumer_name=f"alerts delivery (group {settings.delivery_group_id})",
        consumer=lambda: delivery.consumer,  # the subscriber is made just below
        gauges=gauges,
        stall_after_s=settings.stall_after,
    )
    deliverer = Deliverer(
        receivers,
        {spec.name: spec for spec in alerts_file.receivers},
        alerts_file.routes,
        policy,
        metrics,
        wall_clock=wall_clock,
        note_error=delivery_watchdog.note_error,
    )
    alerts_topic = settings.kafka.topic_name(ALERT_TRANSITIONS)
    delivery = subscribe_delivery(
        broker,
        deliverer,
        metrics,
        delivery_watchdog.batch_policy(settings.retry_max_s),
        kafka=settings.kafka,
        topic=alerts_topic,
        group_id=settings.delivery_group_id,
        policy=policy,
    )
    groups = GroupWatch(settings.kafka, settings.watch_groups, stall_after_s=settings.stall_after)
    evaluator = Evaluator(
        settings,
        roadmap,
        alerts_file,
        publisher,
        metrics,
        gauges=gauges,
        stalls=lambda: [*groups.stalls(), *delivery_watchdog.stalls()],
        wall_clock=wall_clock,
        readers=readers,
    )
    broker.publisher(
        alerts_topic,
        title="alerts: alert records",
        description=ALERT_TRANSITIONS.description,
        schema=AlertTransition,
    )

    async def list_alerts(_: Request) -> Response:
        """Every alert the book knows, latest record each, open ones first."""
        records = sorted(
            (entry.record for entry in evaluator.book.entries.values()),
            key=lambda r: (r.state.value not in ("firing", "pending"), r.labels["indicator"]),
        )
        return JSONResponse({"alerts": [r.model_dump(mode="json") for r in records]})

    async def stop_delivery() -> None:
        deliverer.stopping.set()

    http = health_app(
        registry,
        {
            "broker": broker_check(broker),
            "evaluator": evaluator.readiness,
            "delivery": delivery_watchdog.readiness,
        },
        routes=[Route("/v1/alerts", list_alerts, methods=["GET"])],
    )
    return ServiceApp(
        name=SERVICE,
        settings=settings,
        broker=broker,
        registry=registry,
        http=http,
        topics=[KPI_SNAPSHOTS, ALERT_TRANSITIONS, CANONICAL_EVENTS, DEAD_LETTERS],
        connect=[publisher.start, evaluator.connect, groups.connect],
        after_start=[evaluator.start, delivery_watchdog.start, groups.start],
        before_stop=[stop_delivery, groups.stop, delivery_watchdog.stop, evaluator.stop],
        disconnect=[publisher.stop, client.aclose],
    )
