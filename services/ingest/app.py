"""``create_app(settings)``: build one ingest instance. Nothing is created at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from contracts.publishers import load_publishers
from contracts.records import DlqRecord
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.http import CheckResult, health_app
from services.common.kafka import make_broker
from services.common.publishing import BatchPublisher, RecordPublisher
from services.common.reading import StateReaders
from services.common.runtime import ServiceApp, broker_check
from services.common.watchdog import ConsumerGauges
from services.ingest.access import Access
from services.ingest.consumer import UpstreamConsumer
from services.ingest.dedup import DedupWindow
from services.ingest.http_api import events_route
from services.ingest.metrics import IngestMetrics
from services.ingest.openapi import openapi_route
from services.ingest.pipeline import IngestPipeline
from services.ingest.recall import DedupRecall
from services.ingest.settings import IngestSettings

SERVICE = "ingest"
log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _declare_outputs(broker: KafkaBroker, settings: IngestSettings) -> None:
    """Describe what ingest publishes, for the AsyncAPI document.

    The records themselves are sent in batches by ``BatchPublisher`` (one request per
    partition rather than one per event); these declarations carry the topics' contracts.
    """
    broker.publisher(
        settings.kafka.topic_name(CANONICAL_EVENTS),
        title="ingest: canonical events",
        description=CANONICAL_EVENTS.description,
        schema=CANONICAL_EVENTS.value,
    )
    broker.publisher(
        settings.kafka.topic_name(DEAD_LETTERS),
        title="ingest: dead letters",
        description=DEAD_LETTERS.description,
        schema=DlqRecord,
    )


def create_app(
    settings: IngestSettings,
    *,
    clock: Callable[[], datetime] = _utc_now,
    publisher: RecordPublisher | None = None,
    readers: StateReaders | None = None,
) -> ServiceApp:
    """Wire broker, publisher, pipeline, Kafka subscriber and HTTP routes for one instance.

    ``publisher`` and ``readers`` replace the Kafka producer and the recall's consumer (the
    ``service`` test tier runs ingest in memory with them). A publishers file that cannot be used
    stops it with ``PublishersFileError``, naming the line and field."""
    publishers = (
        load_publishers(settings.publishers_file) if settings.publishers_file is not None else None
    )
    access = Access(token=settings.api_token, publishers=publishers)
    if publishers is not None:
        waiting = [n for n, p in publishers.publishers.items() if p.token_sha256 is None]
        if waiting:
            log.warning(
                "publishers without a token are refused until one is issued "
                "(roadmap-monitor token NAME)",
                extra={"publishers": waiting},
            )
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry, access.names)
    broker = make_broker(
        settings.kafka,
        service=SERVICE,
        registry=registry,
        description="Validates upstream events and publishes canonical events or dead letters.",
    )
    publisher = publisher or BatchPublisher(settings.kafka, service=SERVICE)
    window = DedupWindow(settings.dedup_window)
    recall = DedupRecall(
        settings.kafka, window, metrics, enabled=settings.dedup_recall, readers=readers
    )
    pipeline = IngestPipeline(
        publisher,
        window,
        metrics,
        clock,
        canonical_topic=settings.kafka.topic_name(CANONICAL_EVENTS),
        dlq_topic=settings.kafka.topic_name(DEAD_LETTERS),
    )
    consumer = UpstreamConsumer(broker, settings, pipeline, metrics, ConsumerGauges(registry))
    _declare_outputs(broker, settings)

    async def producer_ready() -> CheckResult:
        return CheckResult(publisher.started, "started" if publisher.started else "not started")

    http = health_app(
        registry,
        {
            "broker": broker_check(broker),
            "producer": producer_ready,
            "consumer": consumer.readiness,
            "dedup": recall.readiness,
        },
        routes=[events_route(settings, pipeline, metrics, access), openapi_route(settings)],
    )
    return ServiceApp(
        name=SERVICE,
        settings=settings,
        broker=broker,
        registry=registry,
        http=http,
        topics=[*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS],
        # The producer starts only once the window is recalled: until then POST /v1/events
        # answers 503, rather than admitting events against a window that is not complete.
        connect=[recall.connect, publisher.start],
        after_start=[consumer.watchdog.start],
        before_stop=[consumer.watchdog.stop],
        disconnect=[publisher.stop],
    )
